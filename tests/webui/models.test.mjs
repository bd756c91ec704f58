// A model import from a path on a "USB disk" through the models page: the job's progress bar
// runs to 100 %, the model appears ready, and a delete through the confirm dialog removes it.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
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
