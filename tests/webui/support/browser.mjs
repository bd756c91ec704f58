// Debian's Chromium driven by playwright-core, headless, with nothing of its own on the network
// (no updates, sync, metrics or safe-browsing lookups), and browser contexts that record every
// console error, page error, failed or non-local request so a test can assert there were none.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { artifactDir } from './agent.mjs';

export const chromiumPath = process.env.AIBOX_CHROMIUM || '/usr/bin/chromium';
export const screenshotDir = path.join(artifactDir, 'screenshots');

export const pages = ['dashboard', 'hardware', 'models', 'runtimes', 'usage', 'access', 'audit', 'license', 'system'];
export const languages = ['en', 'zh-CN'];

const quietFlags = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--disable-breakpad',
  '--disable-crash-reporter',
  '--disable-gpu',
  '--disable-quic',
  '--metrics-recording-only',
  '--no-first-run',
  '--no-default-browser-check',
  '--no-pings',
  '--no-proxy-server',
  '--dns-prefetch-disable',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,' +
    'AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions',
];

// A fresh headless Chromium; playwright gives it a new empty profile (a temp user data dir)
// and removes it at close. Never a downloaded browser: the Debian package only.
export async function launchBrowser() {
  const args = [...quietFlags];
  if (process.getuid?.() === 0) {
    args.push('--no-sandbox'); // Chromium's sandbox refuses to run as root
  }
  return chromium.launch({ executablePath: chromiumPath, headless: true, args });
}

export function isLocal(url) {
  const u = new URL(url);
  if (['data:', 'blob:', 'about:'].includes(u.protocol)) {
    return true;
  }
  return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

// One browser context (its own cookies and storage) on the agent, with its problems recorded.
export class Session {
  static async open(browser, agent, { screenshotsAs } = {}) {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true, // the agent's self-signed certificate
      locale: 'en-US',
      viewport: { width: 1280, height: 800 },
      serviceWorkers: 'block',
    });
    context.setDefaultTimeout(15000);
    const session = new Session(context, agent, screenshotsAs);
    await session.#guard();
    session.page = await context.newPage();
    session.#watch(session.page);
    return session;
  }

  constructor(context, agent, screenshotsAs) {
    this.context = context;
    this.agent = agent;
    this.screenshotsAs = screenshotsAs;
    this.problems = [];
    this.requests = [];
    this.nonLocal = new Set();
    this.apiRefusals = []; // 4xx answers of the API: expected in places, shown on failure
  }

  async #guard() {
    await this.context.route(
      (url) => !isLocal(url.href),
      (route) => {
        this.nonLocal.add(route.request().url());
        return route.abort('blockedbyclient');
      },
    );
    this.context.on('request', (request) => {
      this.requests.push(`${request.method()} ${request.url()}`);
      if (!isLocal(request.url())) {
        this.nonLocal.add(request.url());
      }
    });
    this.context.on('response', (response) => {
      const url = new URL(response.url());
      const status = response.status();
      const what = `${response.request().method()} ${url.pathname}${url.search} -> ${status}`;
      if (status >= 500) {
        this.problems.push(`server error: ${what}`);
      } else if (status >= 400 && !url.pathname.startsWith('/api/')) {
        this.problems.push(`missing file: ${what}`);
      } else if (status >= 400) {
        this.apiRefusals.push(what);
      }
    });
    this.context.on('requestfailed', (request) => {
      const error = request.failure()?.errorText ?? '';
      // Aborted: a navigation or a closed page cut a request (an event stream) short.
      if (isLocal(request.url()) && !error.includes('ERR_ABORTED')) {
        this.problems.push(`request failed: ${request.method()} ${request.url()}: ${error}`);
      }
    });
  }

  #watch(page) {
    page.on('console', (message) => {
      if (message.type() !== 'error') {
        return;
      }
      const text = message.text();
      // Chromium logs every 4xx answer as "Failed to load resource"; those are judged from
      // the responses above (an API refusal can be the expected answer).
      if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(text)) {
        return;
      }
      const at = message.location();
      this.problems.push(`console.error: ${text}${at?.url ? ` (${at.url}:${at.lineNumber})` : ''}`);
    });
    page.on('pageerror', (error) => this.problems.push(`page error: ${error.stack || error}`));
    page.on('crash', () => this.problems.push('the page crashed'));
  }

  // Problems not yet asserted (a test that failed first) are printed, to help find the cause.
  async close() {
    const left = [...this.problems, ...[...this.nonLocal].map((url) => `request left localhost: ${url}`)];
    if (left.length > 0) {
      console.log(`browser problems not yet reported:\n  ${left.join('\n  ')}`);
    }
    await this.context.close();
  }

  // Throws when anything went wrong so far: console errors, page errors, server errors,
  // missing files, failed requests, or any request that tried to leave localhost.
  assertClean(where = '') {
    const found = [...this.problems];
    for (const url of this.nonLocal) {
      found.push(`request left localhost: ${url}`);
    }
    this.problems = [];
    this.nonLocal.clear();
    if (found.length > 0) {
      throw new Error(
        `${where ? `${where}: ` : ''}${found.length} problem(s) in the browser:\n  ${found.join('\n  ')}` +
          (this.apiRefusals.length ? `\nAPI refusals seen: ${this.apiRefusals.join(', ')}` : ''),
      );
    }
  }

  url(hash) {
    return `${this.agent.origin}/#/${hash}`;
  }

  main(name) {
    return this.page.locator(`main[data-page="${name}"][data-ready="true"]`);
  }

  // Opens a page by its route and waits until it says it is loaded.
  async open(name) {
    await this.page.goto(this.url(name));
    await this.main(name).waitFor();
  }

  // Follows the navigation link to a page and waits until it is loaded.
  async follow(name) {
    await this.page.locator(`a[data-nav="${name}"]`).click();
    await this.main(name).waitFor();
  }

  async login(username, password, landing = 'dashboard') {
    await this.open('login');
    const form = this.page.locator('form#login');
    await form.locator('input[name=username]').fill(username);
    await form.locator('input[name=password]').fill(password);
    await form.locator('[type=submit]').click();
    if (landing) {
      await this.main(landing).waitFor();
    }
  }

  // The visible text of the page with strings that have no translation (rendered as ⟦key⟧).
  async missingStrings() {
    const text = await this.page.locator('body').innerText();
    const attributes = await this.page.evaluate(() =>
      [...document.querySelectorAll('[title],[placeholder],[aria-label],[alt]')]
        .flatMap((e) => ['title', 'placeholder', 'aria-label', 'alt'].map((a) => e.getAttribute(a) ?? ''))
        .join('\n'),
    );
    return [...`${text}\n${attributes}`.matchAll(/⟦[^⟧]*⟧/g)].map((m) => m[0]);
  }

  async screenshot(name) {
    const file = path.join(screenshotDir, this.screenshotsAs ?? '', `${name}.png`);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await this.page.screenshot({ path: file, fullPage: true });
    return file;
  }
}
