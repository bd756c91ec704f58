// The real aibox-agent in a temp root for the browser tests: simulated hardware, the web UI
// from this tree, a free port on 127.0.0.1, and a local-admin client on its unix socket for
// setting up data the way aiboxctl would.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceRoot = path.resolve(here, '../../..');
// Screenshots and agent logs: the test's build directory under CTest.
export const artifactDir = process.env.AIBOX_ARTIFACTS || path.join(os.tmpdir(), 'aibox-webui-artifacts');
const testName = path.basename(process.argv[1] ?? 'agent').replace(/\.test\.mjs$/, '');
let agentsStarted = 0;

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests through ctest -L browser`);
  }
  return value;
}

// The agent's one-time admin password and its replacement in every test.
export const adminPassword = 'Browser-tests-root-pw-1';

// Agents still running when the test process ends (a failed before() hook, an uncaught error)
// are stopped here; setpriv --pdeathsig covers a test process that is killed outright.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    child.kill('SIGKILL');
  }
});

export class Agent {
  // Starts an agent; `importDirs` become [models] import_dirs (host paths); with `runtimes`
  // it runs instances of this build's aibox-runtime (engine profiles from packaging/engines).
  static async start({ importDirs = [], runtimes = false } = {}) {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'aibox-webui-'));
    const agent = new Agent(root);
    try {
      await agent.#prepare(importDirs, runtimes);
      await agent.#launch();
      return agent;
    } catch (error) {
      await agent.stop();
      throw error;
    }
  }

  constructor(root) {
    this.root = root;
    this.logFile = path.join(artifactDir, 'logs', `${testName}-${++agentsStarted}.log`);
    this.port = 0;
    this.child = null;
    this.logText = '';
  }

  get origin() {
    return `https://127.0.0.1:${this.port}`;
  }

  get socket() {
    return path.join(this.root, 'run/aibox/agent.sock');
  }

  log() {
    return this.logText;
  }

  async #prepare(importDirs, runtimes) {
    const webui = process.env.AIBOX_WEBUI_DIR || path.join(sourceRoot, 'webui');
    if (!fs.existsSync(path.join(webui, 'index.html'))) {
      throw new Error(`no web UI at ${webui} (index.html missing)`);
    }
    const sections = {
      // The console straight from this tree (a host path, not inside the root).
      server: ['listen = 127.0.0.1:0', `webui_dir = ${webui}`],
      // The cheapest password hash the settings allow: the tests log in often.
      security: ['scrypt_log2n = 14'],
      hardware: ['sources = sim'],
      models: [`import_dirs = ${importDirs.join(',') || '/srv'}`, 'reserve_bytes = 0'],
    };
    if (runtimes) {
      const base = 31000 + (process.pid % 400) * 10;
      sections.runtimes = [
        `engines_dir = ${path.join(sourceRoot, 'packaging/engines')}`,
        `engine_path = ${path.dirname(required('AIBOX_RUNTIME'))}`,
        `port_range = ${base}-${base + 9}`,
        'cgroup = off',
      ];
    }
    const ini = Object.entries(sections)
      .map(([section, lines]) => `[${section}]\n${lines.join('\n')}\n`)
      .join('\n');
    await fsp.mkdir(path.join(this.root, 'etc/aibox'), { recursive: true });
    await fsp.writeFile(path.join(this.root, 'etc/aibox/aibox.conf'), ini);
  }

  async #launch() {
    const binary = required('AIBOX_AGENT');
    const env = { ...process.env };
    for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'AIBOX_ROOT', 'JOURNAL_STREAM']) {
      delete env[name];
    }
    // setpriv execs the agent with SIGTERM as its parent-death signal.
    this.child = spawn('setpriv', ['--pdeathsig', 'TERM', binary, '--root', this.root], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this.child);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? signal)));
    this.child.once('exit', () => running.delete(this.child));
    const listening = new Promise((resolve) => {
      const collect = (chunk) => {
        this.logText += chunk.toString();
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(this.logText);
        if (match) {
          resolve(Number(match[1]));
        }
      };
      this.child.stdout.on('data', collect);
      this.child.stderr.on('data', collect);
    });
    const first = await Promise.race([
      listening,
      this.exited.then((code) => ({ exited: code })),
      new Promise((resolve) => setTimeout(resolve, 30000, 'no "listening on" in 30 s').unref()),
    ]);
    if (typeof first !== 'number') {
      throw new Error(`the agent did not start (${JSON.stringify(first)}):\n${this.logText}`);
    }
    this.port = first;
    await this.#waitHealthy();
  }

  async #waitHealthy() {
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      try {
        const reply = await this.https('GET', '/healthz');
        if (reply.status === 200) {
          return;
        }
      } catch {
        // not accepting connections yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`/healthz did not answer 200 in 30 s:\n${this.logText}`);
  }

  // SIGTERM, then SIGKILL after 10 s; keeps the log, removes the temp root. Throws when the
  // agent did not stop cleanly (a crash, a sanitizer report), after cleaning up.
  async stop() {
    let status = null;
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const killed = setTimeout(() => this.child.kill('SIGKILL'), 10000);
      status = await this.exited;
      clearTimeout(killed);
    }
    await fsp.mkdir(path.dirname(this.logFile), { recursive: true });
    await fsp.writeFile(this.logFile, this.logText);
    if (process.env.AIBOX_KEEP_ROOT) {
      console.log(`agent root kept: ${this.root}`);
    } else {
      await fsp.rm(this.root, { recursive: true, force: true });
    }
    if (status !== null && status !== 0) {
      throw new Error(`the agent exited with ${status} on SIGTERM (log: ${this.logFile}):\n` +
        this.logText.slice(-4000));
    }
  }

  // A request on the unix socket, as a local admin (root or group aibox-admin).
  local(method, urlPath, body) {
    return request(http, { socketPath: this.socket, method, path: urlPath }, body);
  }

  // A request over HTTPS to 127.0.0.1, checked against the agent's own certificate.
  https(method, urlPath, body, headers = {}) {
    const ca = fs.readFileSync(path.join(this.root, 'var/lib/aibox/identity/https.crt'));
    return request(
      https,
      { host: '127.0.0.1', port: this.port, servername: 'localhost', ca, method, path: urlPath, headers },
      body,
    );
  }

  // A local-admin request that must succeed; returns its JSON.
  async ok(method, urlPath, body) {
    const reply = await this.local(method, urlPath, body);
    if (reply.status < 200 || reply.status > 299) {
      throw new Error(`${method} ${urlPath}: ${reply.status} ${reply.text}`);
    }
    return reply.json;
  }

  // The first admin's one-time password, found the way an admin is told to: aiboxctl.
  async oneTimePassword() {
    const { stdout } = await promisify(execFile)(required('AIBOX_CTL'), [
      '--root', this.root, '--json', 'users', 'bootstrap-info',
    ]);
    const info = JSON.parse(stdout);
    if (!info.pending) {
      throw new Error('no one-time admin password is pending');
    }
    return (await fsp.readFile(info.file, 'utf8')).trim();
  }

  // Replaces a user's one-time password through the API, as that user would at first login.
  async changePassword(username, oldPassword, newPassword) {
    const login = await this.https('POST', '/api/v1/auth/login', { username, password: oldPassword });
    if (login.status !== 200) {
      throw new Error(`login of ${username}: ${login.status} ${login.text}`);
    }
    const cookie = login.headers['set-cookie'].map((c) => c.split(';')[0]).join('; ');
    const changed = await this.https(
      'POST',
      '/api/v1/auth/password',
      { old_password: oldPassword, new_password: newPassword },
      { cookie, 'x-csrf-token': login.json.csrf_token },
    );
    if (changed.status < 200 || changed.status > 299) {
      throw new Error(`password change of ${username}: ${changed.status} ${changed.text}`);
    }
  }

  // The admin with `adminPassword` instead of the one-time password.
  async setUpAdmin() {
    await this.changePassword('admin', await this.oneTimePassword(), adminPassword);
  }

  // A user with a chosen password, already changed (no forced change at login).
  async addUser(name, role, password) {
    const initial = `${password}-initial`;
    await this.ok('POST', '/api/v1/users', { name, role, password: initial });
    await this.changePassword(name, initial, password);
  }

  // A license for this box (a simulated machine identity under the root), issued with the
  // test vendor key this build trusts, installed as an admin would.
  async installLicense(entitlements = {}) {
    const dmi = path.join(this.root, 'sys/class/dmi/id');
    await fsp.mkdir(dmi, { recursive: true });
    await fsp.writeFile(path.join(dmi, 'product_uuid'), '4c4c4544-0042-3510-8052-b4c04f4e3332\n');
    await fsp.writeFile(path.join(dmi, 'board_serial'), 'CN7475142U0123\n');
    const fingerprint = await this.ok('GET', '/api/v1/license/fingerprint');
    const file = await issueLicense(this.root, 'box', { id: 'LIC-TEST', customer: 'Tests', days: 30, entitlements }, fingerprint);
    const reply = await request(http, { socketPath: this.socket, method: 'PUT', path: '/api/v1/license' }, undefined, await fsp.readFile(file));
    if (reply.status !== 200) {
      throw new Error(`license install: ${reply.status} ${reply.text}`);
    }
  }

  // Waits for a model job to end; returns it.
  async waitJob(id, timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.ok('GET', `/api/v1/jobs/${id}`);
      if ((job.state !== 'queued' && job.state !== 'running') || Date.now() > deadline) {
        return job;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

// A license from the vendor's tool (aibox-license issue) for the fingerprint given; its path.
export async function issueLicense(dir, name, licenseRequest, fingerprint) {
  const fp = path.join(dir, `${name}.fp.json`);
  const req = path.join(dir, `${name}.request.json`);
  const out = path.join(dir, `${name}.lic`);
  await fsp.writeFile(fp, JSON.stringify(fingerprint));
  await fsp.writeFile(req, JSON.stringify(licenseRequest));
  await promisify(execFile)(required('AIBOX_LICENSE'), [
    'issue', '--key', required('AIBOX_TEST_VENDOR_KEY'), '--request', req, '--fingerprint', fp, '--out', out,
  ]);
  return out;
}

// A request with a JSON body, or with `raw` bytes as they are (a license file).
function request(transport, options, body, raw) {
  return new Promise((resolve, reject) => {
    const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const headers = { ...(options.headers ?? {}) };
    if (payload !== undefined) {
      headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const req = transport.request({ ...options, headers, timeout: 30000 }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method} ${options.path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
