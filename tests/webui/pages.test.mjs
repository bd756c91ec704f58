// Every page of the console, in English and in Chinese, as an admin: each renders the agent's
// real data, no string is missing, nothing goes to the console's error log, no request leaves
// localhost, and a screenshot of each is kept. The hardware page's chart draws real points.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword, sourceRoot } from './support/agent.mjs';
import { Session, languages, launchBrowser, pages, screenshotDir } from './support/browser.mjs';
import { writeLlamaGguf } from './support/gguf.mjs';

let agent;
let browser;
let session;
let usb;
const seed = {};

before(async () => {
  usb = await fsp.mkdtemp(path.join(os.tmpdir(), 'aibox-webui-usb-'));
  agent = await Agent.start({ importDirs: [usb] });
  await agent.setUpAdmin();
  // Something on every page: a user, an API token, an inference key, a model, audit records.
  await agent.ok('POST', '/api/v1/users', { name: 'alice', role: 'operator' });
  seed.token = await agent.ok('POST', '/api/v1/tokens', { name: 'ci-pipeline', role: 'viewer' });
  seed.key = await agent.ok('POST', '/api/v1/keys', { name: 'dify-prod', owner: 'rag-team' });
  await writeLlamaGguf(path.join(usb, 'seed.gguf'), { mib: 1 });
  const imported = await agent.ok('POST', '/api/v1/models', {
    source: path.join(usb, 'seed.gguf'),
    name: 'seed-model',
  });
  const job = await agent.waitJob(imported.job.id);
  assert.equal(job.state, 'succeeded', JSON.stringify(job));
  seed.system = await agent.ok('GET', '/api/v1/system');
  seed.gpus = (await agent.ok('GET', '/api/v1/hardware/gpus')).gpus;
  seed.fans = (await agent.ok('GET', '/api/v1/hardware/sensors?kind=fan')).sensors;
  browser = await launchBrowser();
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
  await fsp.rm(usb, { recursive: true, force: true });
});

// Text each page must show, taken from the agent's API.
function expectedText(page) {
  switch (page) {
    case 'dashboard':
      return [seed.gpus[0].name, seed.fans[0].label];
    case 'access':
      return ['alice', seed.token.name, seed.key.name];
    case 'audit':
      return ['/api/v1/keys', 'uid:0'];
    case 'system':
      return [seed.system.hostname, seed.system.version, seed.system.build_id];
    default:
      return [];
  }
}

async function waitForHistoryPoints(id, count) {
  const [chip, sensor] = id.split('/');
  const deadline = Date.now() + 20000;
  for (;;) {
    const history = await agent.ok('GET', `/api/v1/hardware/sensors/${chip}/${sensor}/history`);
    if (history.points.length >= count || Date.now() > deadline) {
      return history.points.length;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function chartPoints(points) {
  return (points ?? '').trim().split(/\s+/).filter((pair) => /^-?[\d.]+,-?[\d.]+$/.test(pair));
}

async function checkHardware(page) {
  const { sensors } = await agent.ok('GET', '/api/v1/hardware/sensors');
  const rows = await page.locator('tr[data-sensor]').evaluateAll((trs) =>
    Object.fromEntries(trs.map((tr) => [tr.dataset.sensor, tr.dataset.status])),
  );
  for (const sensor of sensors) {
    assert.ok(sensor.id in rows, `sensor ${sensor.id} has a row`);
    assert.equal(rows[sensor.id], sensor.status, `status of ${sensor.id}`);
  }
  assert.ok(await page.locator('span.badge-simulated').first().isVisible(),
    'the simulated box is labelled as simulated');

  const polyline = page.locator('svg[data-chart] polyline').first();
  await page.waitForFunction(() => {
    const points = document.querySelector('svg[data-chart] polyline')?.getAttribute('points') ?? '';
    return points.trim().split(/\s+/).filter((p) => p.includes(',')).length >= 2;
  });
  const drawn = chartPoints(await polyline.getAttribute('points'));
  assert.ok(drawn.length >= 2, `the chart draws points: ${drawn.length}`);

  // 1h, shown first, last: each click then changes the range and must fetch its history.
  const spans = { '24h': 86400, '30d': 30 * 86400, '1h': 3600 };
  for (const [range, seconds] of Object.entries(spans)) {
    const history = page.waitForRequest((r) => /\/api\/v1\/hardware\/sensors\/.+\/history/.test(r.url()));
    await page.locator(`button[data-range="${range}"]`).click();
    const query = new URL((await history).url()).searchParams;
    if (query.get('from') && query.get('to')) {
      // The API takes unix seconds or ISO 8601 times.
      const time = (v) => (/^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v));
      const span = (time(query.get('to')) - time(query.get('from'))) / 1000;
      assert.ok(Math.abs(span - seconds) < 600, `range ${range} asks for ${span} s of history`);
    }
    await page.locator('svg[data-chart]').first().waitFor();
  }
}

async function checkModels(page) {
  const row = page.locator('tr[data-model="seed-model"]');
  await row.waitFor();
  assert.equal(await row.getAttribute('data-state'), 'ready');
  assert.match(await row.locator('td[data-field="state"]').innerText(), /\S/);
}

async function checkPage(name, lang) {
  const { page } = session;
  await session.follow(name);
  const main = page.locator(`main[data-page="${name}"]`);
  for (const text of expectedText(name)) {
    await main.getByText(text, { exact: false }).first().waitFor({ timeout: 3000 })
      .catch(() => assert.fail(`${lang} ${name}: the page does not show "${text}" from the API`));
  }
  if (name === 'hardware') {
    await checkHardware(page);
  } else if (name === 'models') {
    await checkModels(page);
  }
  assert.deepEqual(await session.missingStrings(), [], `${lang} ${name}: strings without translation`);
  await session.screenshot(`${lang}/${name}`);
  session.assertClean(`${lang} ${name}`);
}

describe('pages', () => {
  it('every page renders the agent\'s data in English and in Chinese', async () => {
    // The chart needs two samples of history; the simulated box gives one every few seconds.
    const { sensors } = await agent.ok('GET', '/api/v1/hardware/sensors');
    await waitForHistoryPoints(sensors[0].id, 2);

    session = await Session.open(browser, agent);
    const { page } = session;
    await session.open('login');
    assert.deepEqual(await session.missingStrings(), []);
    await session.screenshot('en/login');
    await session.login('admin', adminPassword);

    for (const lang of languages) {
      if (lang !== 'en') {
        await page.locator('select#lang').selectOption(lang);
        await page.waitForFunction((l) => localStorage.getItem('aibox.lang') === l, lang);
        // Remembered across a reload.
        await page.reload();
        await page.locator('main[data-ready="true"]').waitFor();
        assert.equal(await page.locator('select#lang').inputValue(), lang);
        const nav = await page.locator('a[data-nav]').allInnerTexts();
        assert.match(nav.join(' '), /[\u4e00-\u9fff]/, `the navigation is in ${lang}: ${nav}`);
      }
      for (const name of pages) {
        await checkPage(name, lang);
      }
    }

    await page.locator('button#logout').click();
    await session.main('login').waitFor();
    assert.equal(await page.locator('select#lang').inputValue(), 'zh-CN');
    assert.deepEqual(await session.missingStrings(), []);
    await session.screenshot('zh-CN/login');
    session.assertClean('login page');

    if (process.env.AIBOX_UPDATE_SCREENSHOT === '1') {
      await fsp.mkdir(path.join(sourceRoot, 'docs/img'), { recursive: true });
      await fsp.copyFile(path.join(screenshotDir, 'en/dashboard.png'),
        path.join(sourceRoot, 'docs/img/dashboard.png'));
    }
  });
});
