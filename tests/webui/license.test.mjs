// The License page and the banner: a fresh box shows "no license" on every page; a license
// file picked on the License page installs, the banner goes and the page shows the limits and
// their usage; a file that is not for this box is refused with the agent's reason; a license
// in its grace period brings the banner back on every page.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword, issueLicense } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';

let agent;
let browser;
let session;
let work;

before(async () => {
  agent = await Agent.start();
  await agent.setUpAdmin();
  // A machine to bind to: DMI ids under the agent's root, read at every license request.
  const dmi = path.join(agent.root, 'sys/class/dmi/id');
  await fsp.mkdir(dmi, { recursive: true });
  await fsp.writeFile(path.join(dmi, 'product_uuid'), '4c4c4544-0042-3510-8052-b4c04f4e3332\n');
  await fsp.writeFile(path.join(dmi, 'board_serial'), 'CN7475142U0123\n');
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'aibox-webui-license-'));
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'license' });
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
  await fsp.rm(work, { recursive: true, force: true });
});

const issue = (name, request, fingerprint) => issueLicense(work, name, request, fingerprint);

const banner = () => session.page.locator('[data-role=license-banner]');

describe('license', () => {
  it('installs a picked file, shows limits and usage, and refuses a foreign one', async () => {
    const { page } = session;
    await session.login('admin', adminPassword);
    await banner().waitFor();
    assert.equal(await banner().getAttribute('data-state'), 'none');
    await session.follow('license');
    assert.equal(await page.locator('[data-field=state]').getAttribute('data-state'), 'none');
    const leftovers = /\bnull\b|undefined|\[object /;
    assert.doesNotMatch(await page.locator('main').innerText(), leftovers);
    await session.screenshot('license-none');

    const foreign = await issue('foreign', { id: 'LIC-OTHER', customer: 'Elsewhere', days: 30 },
      { components: [`nic:${'a'.repeat(64)}`] });
    await page.locator('input[data-action=license-install]').setInputFiles(foreign);
    const error = page.locator('form#license-install [data-role=error]');
    await error.waitFor();
    assert.match(await error.textContent(), /bound to another machine/);

    const fingerprint = await agent.ok('GET', '/api/v1/license/fingerprint');
    const good = await issue('good', {
      id: 'LIC-WEB', customer: 'Example Corp', days: 365,
      entitlements: { max_models: 10, max_instances: 2, modules: ['gateway'] },
    }, fingerprint);
    await page.locator('input[data-action=license-install]').setInputFiles(good);
    await page.locator('[data-field=state][data-state=valid]').waitFor();
    assert.equal(await page.locator('[data-field=id]').textContent(), 'LIC-WEB');
    await banner().waitFor({ state: 'hidden' });
    assert.match(await page.locator('[data-limit=models] [data-field=usage]').textContent(), /0 of 10/);
    assert.match(await page.locator('[data-field=modules]').textContent(), /gateway/);
    assert.doesNotMatch(await page.locator('main').innerText(), leftovers);
    await session.screenshot('license-valid');
    session.assertClean();
  });

  it('shows the grace banner on every page', async () => {
    const { page } = session;
    const fingerprint = await agent.ok('GET', '/api/v1/license/fingerprint');
    const now = Date.now();
    const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
    const grace = await issue('grace', {
      id: 'LIC-GRACE', customer: 'Example Corp', grace_days: 14,
      not_before: iso(now - 40 * 86400000), not_after: iso(now - 86400000),
    }, fingerprint);
    await page.locator('input[data-action=license-install]').setInputFiles(grace);
    await page.locator('[data-field=state][data-state=grace]').waitFor();
    for (const name of ['dashboard', 'models', 'system']) {
      await session.follow(name);
      await banner().waitFor();
      assert.equal(await banner().getAttribute('data-state'), 'grace');
      assert.match(await banner().textContent(), /grace period/);
    }
    await session.screenshot('license-grace-banner');
    session.assertClean();
  });
});
