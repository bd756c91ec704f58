// The System page shows how the factory provisioned the box: aibox-provision (the real tool)
// runs its identity and report steps on the agent's root, and the page shows the report's
// steps and the device certificate; an admin's factory reset is refused until the box's serial
// is typed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { Agent, adminPassword } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';

const run = promisify(execFile);
let agent;
let browser;
let session;
let work;

before(async () => {
  agent = await Agent.start();
  await agent.setUpAdmin();
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'aibox-webui-system-'));
  const tool = process.env.AIBOX_PROVISION;
  await run(tool, ['ca', 'init', '--key', path.join(work, 'ca.key'), '--cert', path.join(work, 'ca.crt')]);
  const manifest = path.join(work, 'manifest.json');
  await fsp.writeFile(manifest, JSON.stringify({
    version: 1,
    sku: { name: 'SIM-8G' },
    serial: 'WEB0001',
    factory_ca: { certificate: path.join(work, 'ca.crt'), key: path.join(work, 'ca.key') },
    admin: { one_time_password: 'label-secret-web1' },
  }));
  await run(tool, ['run', '--manifest', manifest, '--root', agent.root, '--station', 'line-7',
    '--only', 'identity,report', '--json']);
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'system' });
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

describe('system', () => {
  it('shows the provisioning report and the device certificate, and guards the factory reset', async () => {
    const { page } = session;
    await session.login('admin', adminPassword);
    await session.follow('system');
    const provisioning = page.locator('[data-role=provisioning]');
    await provisioning.locator('[data-field=provisioning-state] [data-status=PASSED]').waitFor();
    assert.match(await provisioning.innerText(), /line-7/);
    assert.match(await provisioning.innerText(), /SIM-8G/);
    const rows = provisioning.locator('[data-role=provisioning-steps] tbody tr');
    assert.equal(await rows.count(), 6); // every step before the report itself
    assert.equal(await rows.locator('[data-status=SKIPPED]').count(), 5);
    assert.equal(await page.locator('tr[data-step=identity] [data-status=PASSED]').count(), 1);
    assert.match(await page.locator('main').innerText(), /CN=WEB0001/);
    assert.doesNotMatch(await page.locator('main').innerText(), /\bnull\b|undefined|\[object /);
    await session.screenshot('system-provisioned');

    const reset = page.locator('form#factory-reset');
    assert.match(await reset.innerText(), /WEB0001/);
    await reset.locator('input[name=confirm]').fill('yes please');
    await reset.locator('[data-action=factory-reset]').click();
    const error = reset.locator('[data-role=error]');
    await error.waitFor();
    assert.match(await error.textContent(), /serial number/);
    // Nothing was reset: the admin is still signed in and the users are there.
    const users = await agent.ok('GET', '/api/v1/users');
    assert.ok(users.users.some((u) => u.name === 'admin'));
  });
});
