// Users and access from the console: an admin adds a user, whose one-time password is shown
// once and works (with the forced change) in another browser; API tokens and inference keys are
// shown once, work, and are gone from the page afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';

let agent;
let browser;
let session;

before(async () => {
  agent = await Agent.start();
  await agent.setUpAdmin();
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'access' });
  await session.login('admin', adminPassword);
  await session.follow('access');
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
});

// Fills the form of a create control, submits it and returns the secret it shows once.
async function createWithSecret(action, fields, shot) {
  const { page } = session;
  const form = page.locator(`form:has([data-action="${action}"])`);
  for (const [name, value] of Object.entries(fields)) {
    const input = form.locator(`[name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === 'SELECT') {
      await input.selectOption(value);
    } else {
      await input.fill(value);
    }
  }
  await form.locator(`[data-action="${action}"]`).click();
  const secret = page.locator('[data-role=secret]');
  await secret.waitFor();
  const text = (await secret.innerText()).trim();
  await session.screenshot(shot);
  await page.keyboard.press('Escape');
  await secret.waitFor({ state: 'detached' });
  return text;
}

describe('access', () => {
  it('adds a user whose one-time password is shown once and must be changed at first login', async () => {
    const password = await createWithSecret('user-add', { name: 'bob', role: 'operator' }, 'user-added');
    assert.ok(password.length >= 12, `a one-time password: ${password}`);
    const { users } = await agent.ok('GET', '/api/v1/users');
    const bob = users.find((u) => u.name === 'bob');
    assert.equal(bob?.role, 'operator');
    assert.equal(bob?.must_change_password, true);
    assert.ok(!(await session.page.locator('body').innerText()).includes(password), 'shown once only');
    session.assertClean('user-add');

    const other = await Session.open(browser, agent, { screenshotsAs: 'access' });
    try {
      await other.login('bob', password, null);
      const change = other.page.locator('form#password-change');
      const old = change.locator('input[name=old_password]');
      if (await old.isVisible()) {
        await old.fill(password);
      }
      await change.locator('input[name=new_password]').fill('Operator-chose-this-1');
      await change.locator('input[name=confirm]').fill('Operator-chose-this-1');
      await change.locator('[type=submit]').click();
      await other.main('dashboard').waitFor();
      const { users: after } = await agent.ok('GET', '/api/v1/users');
      assert.equal(after.find((u) => u.name === 'bob').must_change_password, false);
      other.assertClean('first login of bob');
    } finally {
      await other.close();
    }
  });

  it('shows a new API token and inference key once, and both work', async () => {
    const token = await createWithSecret('token-create', { name: 'backup-job', role: 'viewer' }, 'token-created');
    assert.match(token, /^aibox_[0-9a-f]{12}_\S+$/);
    const system = await agent.https('GET', '/api/v1/system', undefined, { authorization: `Bearer ${token}` });
    assert.equal(system.status, 200, 'the token shown authenticates');
    const { tokens } = await agent.ok('GET', '/api/v1/tokens');
    assert.deepEqual(tokens.map((t) => `${t.name}:${t.role}`), ['backup-job:viewer']);

    const key = await createWithSecret('key-create', { name: 'rag-app' }, 'key-created');
    assert.match(key, /^sk-aibox-[0-9a-f]{12}-\S+$/);
    const { keys } = await agent.ok('GET', '/api/v1/keys');
    assert.deepEqual(keys.map((k) => k.name), ['rag-app']);
    assert.ok(key.startsWith(`sk-aibox-${keys[0].id}-`), 'the key shown is the key stored');

    await session.page.reload();
    await session.main('access').waitFor();
    const text = await session.page.locator('body').innerText();
    assert.ok(!text.includes(token) && !text.includes(key), 'secrets are not shown again');
    assert.equal(await session.page.locator('[data-role=secret]').count(), 0);
    session.assertClean('tokens and keys');
  });
});
