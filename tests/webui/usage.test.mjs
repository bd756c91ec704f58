// The Usage page: rows the gateway sent (through the agent's own route for it) shown per key
// and model with their totals and charts, the key filter, and the CSV export.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';

let agent;
let browser;
let session;
let rag;
let chat;

before(async () => {
  agent = await Agent.start();
  await agent.setUpAdmin();
  rag = await agent.ok('POST', '/api/v1/keys', { name: 'rag-service' });
  chat = await agent.ok('POST', '/api/v1/keys', { name: 'chat-app', max_concurrent: 4 });
  const hour = Math.floor(Date.now() / 3600000) * 3600;
  const row = (h, key, model, requests, prompt, completion, errors) => ({
    hour: h, key, model, requests, prompt_tokens: prompt, completion_tokens: completion, errors, latency_ms: requests * 120,
  });
  await agent.ok('POST', '/api/v1/gateway/usage', {
    batch: 'browser-1',
    rows: [
      row(hour, rag.id, 'qwen2-7b:latest', 40, 12000, 3000, 1),
      row(hour - 3600, rag.id, 'qwen2-7b:latest', 10, 2000, 500, 0),
      row(hour - 7200, chat.id, 'deepseek-r1:q4', 5, 700, 2100, 0),
    ],
  });
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'usage' });
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
});

describe('usage', () => {
  it('shows use per key and model, filters by key and exports CSV', async () => {
    const { page } = session;
    await session.login('admin', adminPassword);
    await session.follow('usage');
    const rows = page.locator('#usage-table tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 2);
    const ragRow = page.locator(`#usage-table tr[data-usage^="${rag.id}"]`);
    assert.match(await ragRow.innerText(), /rag-service/);
    assert.equal(await ragRow.locator('[data-field=requests]').innerText(), '50');
    assert.equal(await ragRow.locator('[data-field=prompt]').innerText(), '14,000');
    assert.equal(await page.locator('[data-total=requests] .stat-value').innerText(), '55');
    // Every hour of the 7 days, 0 where nothing was used.
    assert.equal(await page.locator('svg[data-chart=usage-requests]').getAttribute('data-points'), String(7 * 24));
    assert.doesNotMatch(await page.locator('main').innerText(), /\bnull\b|undefined|NaN|\[object /);
    await session.screenshot('usage');

    await page.locator('select[name=key]').selectOption(chat.id);
    await page.waitForFunction(() => document.querySelectorAll('#usage-table tbody tr').length === 1);
    assert.match(await rows.first().innerText(), /chat-app[\s\S]*deepseek-r1:q4/);
    assert.equal(await page.locator('[data-total=completion] .stat-value').innerText(), '2,100');

    const href = await page.locator('[data-role=usage-export]').getAttribute('href');
    assert.match(href, /format=csv/);
    const csv = await page.evaluate(async (url) => (await fetch(url)).text(), href);
    assert.match(csv, /^hour,key,key_name,model,requests,/);
    assert.match(csv, new RegExp(`,${chat.id},chat-app,deepseek-r1:q4,5,700,2100,0,600`));
    assert.doesNotMatch(csv, /rag-service/);
  });
});
