// The Runtimes page with real `aibox-runtime serve` instances: "Run" on the models page opens
// the create form with that model, the new instance goes to ready as the agent pushes its state,
// the chat playground streams its answer through the agent, a stop and a delete through the
// confirm dialog end it; a create the box cannot place is refused with the agent's numbers.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';

let agent;
let browser;
let session;
let usb;

before(async () => {
  usb = await fsp.mkdtemp(path.join(os.tmpdir(), 'aibox-webui-usb-'));
  agent = await Agent.start({ importDirs: [usb], runtimes: true });
  await agent.setUpAdmin();
  await agent.installLicense({ max_instances: 4 });
  const file = path.join(usb, 'tiny.gguf');
  await promisify(execFile)(process.env.AIBOX_RUNTIME, ['make-test-model', '--arch', 'qwen2', '--type', 'q8_0',
    '--layers', '2', '--dim', '64', '--ff', '128', '--context', '512', file]);
  const imported = await agent.ok('POST', '/api/v1/models', { source: file, name: 'tiny' });
  assert.equal((await agent.waitJob(imported.job.id)).state, 'succeeded');
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'runtimes' });
});

after(async () => {
  // Instances the test left running are stopped with the agent's API before the agent goes.
  for (const r of (await agent?.ok('GET', '/api/v1/runtimes').catch(() => ({ runtimes: [] })))?.runtimes ?? []) {
    await agent.local('POST', `/api/v1/runtimes/${r.id}/stop`);
  }
  await session?.close();
  await browser?.close();
  await agent?.stop();
  await fsp.rm(usb, { recursive: true, force: true });
});

const row = (name) => session.page.locator(`tr[data-runtime="${name}"]`);

describe('runtimes', () => {
  it('runs a model from the models page, chats with it streaming, stops and deletes it', async () => {
    const { page } = session;
    await session.login('admin', adminPassword);
    await session.follow('models');
    await page.locator('tr[data-model="tiny"] [data-action=model-run]').click();
    await session.main('runtimes').waitFor();
    const form = page.locator('form#runtime-create');
    assert.equal(await form.locator('select[name=model]').inputValue(), 'tiny:latest');
    await page.waitForFunction(() => document.querySelector('form#runtime-create input[name=name]').value === 'tiny');
    await form.locator('input[name="settings.threads"]').fill('1');
    await form.locator('input[name="settings.context"]').fill('256');
    const created = page.waitForResponse((r) => r.url().endsWith('/api/v1/runtimes') && r.request().method() === 'POST');
    await form.locator('[type=submit]').click();
    assert.equal((await created).status(), 201, await (await created).text());

    // Ready without a reload: the state comes with the agent's `runtime` events.
    await row('tiny').waitFor();
    await page.locator('tr[data-runtime="tiny"][data-state="ready"]').waitFor({ timeout: 60000 });
    assert.match(await row('tiny').locator('td[data-field=placement]').innerText(), /^:\d+ · 1 cores$/);
    await row('tiny').locator('button.disclose').click();
    await page.locator('[data-role=runtime-logs]').waitFor();
    await page.locator('[data-role=runtime-events] li[data-state=ready]').waitFor();
    await session.screenshot('runtime-ready');

    // The playground: the answer arrives as the engine streams it, with its figures.
    await row('tiny').locator('[data-action=runtime-chat]').click();
    const chat = page.locator('form[data-role=chat]');
    assert.equal(await chat.locator('select[name=instance]').inputValue(), 'tiny');
    await chat.locator('input[name=max_tokens]').fill('8');
    await chat.locator('textarea[name=prompt]').fill('Hello there');
    const relayed = page.waitForResponse((r) => r.url().endsWith('/api/v1/runtimes/tiny/chat'));
    await chat.locator('[data-action=chat-send]').click();
    const answer = await relayed;
    assert.equal(answer.status(), 200);
    assert.match(answer.headers()['content-type'], /text\/event-stream/);
    const stats = page.locator('[data-role=chat-assistant] [data-role=chat-stats]');
    await page.waitForFunction(() => /tokens\/s/.test(document.querySelector('[data-role=chat-stats]')?.textContent || ''));
    assert.match(await stats.textContent(), /first token after \d+ ms · 8 tokens · [\d.]+ tokens\/s/);
    assert.equal(await page.locator('[data-role=chat-user] .chat-text').textContent(), 'Hello there');
    await session.screenshot('runtime-chat');

    // Stop, then delete through the confirm dialog.
    await row('tiny').locator('[data-action=runtime-stop]').click();
    await page.locator('tr[data-runtime="tiny"][data-state="stopped"]').waitFor({ timeout: 20000 });
    assert.equal(await chat.locator('select[name=instance]').inputValue(), '');
    await row('tiny').locator('[data-action=runtime-delete]').click();
    await page.locator('dialog [data-role=confirm]').click();
    await row('tiny').waitFor({ state: 'detached' });
    session.assertClean();
  });

  it('shows why a create is refused, with the numbers, and starts nothing', async () => {
    const { page } = session;
    await session.follow('runtimes');
    const form = page.locator('form#runtime-create');
    await form.locator('input[name=name]').fill('too-many-threads');
    await form.locator('input[name="settings.threads"]').fill('1000');
    await form.locator('[type=submit]').click();
    const error = form.locator('[data-role=error]');
    await error.waitFor();
    assert.match(await error.textContent(), /\d+ cores/);
    assert.equal(await row('too-many-threads').count(), 0);
    await session.screenshot('runtime-refused');
    assert.deepEqual(await session.missingStrings(), []);
  });
});
