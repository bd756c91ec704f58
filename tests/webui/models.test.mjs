// A model import from a path on a "USB disk" through the models page: the job's progress bar
// runs to 100 %, the model appears ready, and a delete through the confirm dialog removes it.
// Then an import from an http:// URL with its SHA-256, served by a local file server.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';
import { writeLlamaGguf } from './support/gguf.mjs';

let agent;
let browser;
let session;
let usb;

before(async () => {
  usb = await fsp.mkdtemp(path.join(os.tmpdir(), 'aibox-webui-usb-'));
  agent = await Agent.start({ importDirs: [usb] });
  await agent.setUpAdmin();
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'models' });
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
  await fsp.rm(usb, { recursive: true, force: true });
});

// Records every value every progress[data-job] element shows, from before the import starts.
async function recordProgress(page) {
  await page.evaluate(() => {
    window.__progress = [];
    const note = (el) => {
      if (el instanceof HTMLProgressElement && el.hasAttribute('data-job')) {
        window.__progress.push({ job: el.dataset.job, value: el.value, max: el.max });
      }
    };
    new MutationObserver((changes) => {
      for (const change of changes) {
        note(change.target);
        for (const node of change.addedNodes) {
          if (node instanceof Element) {
            note(node);
            node.querySelectorAll('progress[data-job]').forEach(note);
          }
        }
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['value', 'max'] });
  });
}

describe('models', () => {
  it('imports a GGUF file from a path with progress to 100 % and shows it ready', async () => {
    const file = path.join(usb, 'tiny-llama-f32.gguf');
    await writeLlamaGguf(file, { name: 'tiny-llama', mib: 24 });
    const { page } = session;
    await session.login('admin', adminPassword);
    await session.follow('models');
    await recordProgress(page);

    const form = page.locator('form#model-import');
    await form.locator('input[name=source]').fill(file);
    if ((await form.locator('input[name=name]').count()) > 0) {
      await form.locator('input[name=name]').fill('tiny-llama');
    }
    const started = page.waitForResponse((r) => r.url().endsWith('/api/v1/models') && r.request().method() === 'POST');
    await form.locator('[type=submit]').click();
    const answer = await started;
    assert.equal(answer.status(), 202, await answer.text());
    const jobId = (await answer.json()).job.id;

    const job = await agent.waitJob(jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    const { models } = await agent.ok('GET', '/api/v1/models');
    assert.equal(models.length, 1);
    const name = models[0].name;
    const row = page.locator(`tr[data-model="${name}"]`);
    await page.locator(`tr[data-model="${name}"][data-state="ready"]`).waitFor();
    assert.match(await row.locator('td[data-field="state"]').innerText(), /\S/);

    // The job's bar was shown and ended full.
    const seen = await page.evaluate((id) => window.__progress.filter((p) => p.job === id), jobId);
    const percents = seen.map((p) => (p.max > 0 ? Math.round((100 * p.value) / p.max) : null));
    console.log(`progress shown for job ${jobId}: ${percents.join(' ') || 'none'}`);
    assert.ok(seen.length > 0, `no progress[data-job="${jobId}"] was shown for the import`);
    assert.ok(percents.some((p) => p === 100), `the progress bar never reached 100 %: ${percents.join(' ')}`);
    const numbers = percents.filter((p) => p !== null);
    assert.ok(numbers.every((p, i) => i === 0 || p >= numbers[i - 1]), `progress went back: ${numbers}`);
    await session.screenshot('imported');
    session.assertClean('import');
  });

  it('imports from an http:// URL with its SHA-256 and shows it ready', async () => {
    const file = path.join(usb, 'net-llama.gguf');
    await writeLlamaGguf(file, { name: 'net-llama', mib: 8 });
    const digest = crypto.createHash('sha256').update(await fsp.readFile(file)).digest('hex');
    const server = http.createServer((req, res) => {
      if (req.url !== '/net-llama.gguf') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': fs.statSync(file).size, 'content-type': 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${server.address().port}/net-llama.gguf`;
      const { page } = session;
      await session.follow('models');
      const form = page.locator('form#model-import');
      await form.locator('input[name=source]').fill(url);
      await form.locator('input[name=name]').fill('net-llama');
      await form.locator('input[name=sha256]').fill(digest);
      const started = page.waitForResponse((r) => r.url().endsWith('/api/v1/models') && r.request().method() === 'POST');
      await form.locator('[type=submit]').click();
      const answer = await started;
      assert.equal(answer.status(), 202, await answer.text());
      const job = await agent.waitJob((await answer.json()).job.id);
      assert.equal(job.state, 'succeeded', JSON.stringify(job));
      await page.locator('tr[data-model="net-llama"][data-state="ready"]').waitFor();
      const model = await agent.ok('GET', '/api/v1/models/net-llama');
      assert.equal(model.source, url);
      assert.equal(model.files[0].sha256, digest);
      await session.screenshot('imported-url');
      session.assertClean('import-url');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('deletes the model after confirmation', async () => {
    const { page } = session;
    const { models } = await agent.ok('GET', '/api/v1/models');
    const name = models[0].name;
    const row = page.locator(`tr[data-model="${name}"]`);

    // Cancelling the dialog changes nothing.
    await row.locator('[data-action="model-delete"]').click();
    const dialog = page.locator('dialog[open]');
    await dialog.locator('[data-role=confirm]').waitFor();
    await session.screenshot('delete-confirm');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await agent.local('GET', `/api/v1/models/${name}`)).status, 200);

    await row.locator('[data-action="model-delete"]').click();
    const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().includes('/api/v1/models/'));
    await page.locator('dialog[open] [data-role=confirm]').click();
    assert.equal((await deleted).status(), 200);
    await row.waitFor({ state: 'detached' });
    assert.equal((await agent.local('GET', `/api/v1/models/${name}`)).status, 404);
    session.assertClean('delete');
  });
});
