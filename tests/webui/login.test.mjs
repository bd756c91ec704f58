// Logging in: the first admin's one-time password, the forced change, logout, and the lock-out
// after repeated failures, each through the console's forms.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Agent, adminPassword } from './support/agent.mjs';
import { Session, launchBrowser } from './support/browser.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

// Runs `body` with a fresh agent and browser context; stops both whatever happens.
async function withAgent(options, body) {
  const agent = await Agent.start(options);
  let session;
  try {
    session = await Session.open(browser, agent, { screenshotsAs: 'login' });
    await body(agent, session);
  } catch (error) {
    await session?.screenshot('failure').catch(() => {});
    error.message += `\n--- agent log ---\n${agent.log().slice(-4000)}`;
    throw error;
  } finally {
    await session?.close();
    await agent.stop();
  }
}

async function submitLogin(page, username, password) {
  const form = page.locator('form#login');
  await form.locator('input[name=username]').fill(username);
  await form.locator('input[name=password]').fill(password);
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/login'));
  await form.locator('[type=submit]').click();
  return answer;
}

async function sessionStatus(page) {
  return page.evaluate(async () => (await fetch('/api/v1/auth/session')).status);
}

describe('login', () => {
  it('first login with the one-time password forces a change, then logout ends the session', async () => {
    await withAgent({}, async (agent, session) => {
      const { page } = session;
      const oneTime = await agent.oneTimePassword();
      const passwordFile = path.join(agent.root, 'var/lib/aibox/initial-admin-password');

      // Anything but the login page sends an anonymous visitor to it.
      await page.goto(session.url('dashboard'));
      await session.main('login').waitFor();
      await session.screenshot('login');

      const login = await submitLogin(page, 'admin', oneTime);
      assert.equal(login.status(), 200);
      const change = page.locator('form#password-change');
      await change.waitFor();
      assert.equal(await page.locator('main[data-page="dashboard"]').count(), 0,
        'the dashboard must not open before the one-time password is changed');
      await session.screenshot('password-change');

      // A confirmation that does not match is refused in the form.
      // The console may carry over the password just typed and hide the old-password field.
      const old = change.locator('input[name=old_password]');
      if (await old.isVisible()) {
        await old.fill(oneTime);
      } else {
        assert.equal(await old.inputValue(), oneTime, 'a hidden old-password field holds the typed one');
      }
      await change.locator('input[name=new_password]').fill('Chosen-at-first-login-1');
      await change.locator('input[name=confirm]').fill('Chosen-at-first-login-2');
      await change.locator('[type=submit]').click();
      await change.locator('[data-role=error]').filter({ hasText: /\S/ }).waitFor();
      assert.ok(fs.existsSync(passwordFile), 'a refused change keeps the one-time password');

      await change.locator('input[name=confirm]').fill('Chosen-at-first-login-1');
      const changed = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/password'));
      await change.locator('[type=submit]').click();
      assert.ok((await changed).ok(), 'the password change is accepted');
      await session.main('dashboard').waitFor();
      assert.ok(!fs.existsSync(passwordFile), 'the one-time password file is removed');
      assert.equal(await sessionStatus(page), 200);

      await page.locator('button#logout').click();
      await session.main('login').waitFor();
      assert.equal(await sessionStatus(page), 401, 'logout ends the session');
      await page.goto(session.url('models'));
      await session.main('login').waitFor();

      // The one-time password is spent; the new one works and needs no change.
      let answer = await submitLogin(page, 'admin', oneTime);
      assert.equal(answer.status(), 401);
      await page.locator('form#login [data-role=error]').filter({ hasText: /\S/ }).waitFor();
      answer = await submitLogin(page, 'admin', 'Chosen-at-first-login-1');
      assert.equal(answer.status(), 200);
      // Straight in, to the dashboard or to the page asked for before the login.
      await page.locator('main[data-ready="true"]:not([data-page="login"])').waitFor();
      assert.equal(await page.locator('form#password-change').count(), 0);
      session.assertClean();
    });
  });

  it('locks the login out after repeated failures and says so', async () => {
    await withAgent({}, async (agent, session) => {
      const { page } = session;
      await agent.setUpAdmin();
      await session.open('login');
      const error = page.locator('form#login [data-role=error]');

      const failures = [];
      // The default policy: from the 5th failure on, the name and the address are locked out.
      for (let i = 0; i < 5; i++) {
        const answer = await submitLogin(page, 'admin', `wrong-password-${i}`);
        failures.push(answer.status());
        await error.filter({ hasText: /\S/ }).waitFor();
      }
      assert.deepEqual(failures, [401, 401, 401, 401, 401]);
      const wrongPasswordText = (await error.innerText()).trim();

      // Locked: even the right password is refused, with a message that is not "wrong password".
      const locked = await submitLogin(page, 'admin', adminPassword);
      assert.equal(locked.status(), 429);
      assert.ok(locked.headers()['retry-after'], 'the agent says when to try again');
      await page.waitForFunction(
        (before) => {
          const text = document.querySelector('form#login [data-role=error]')?.innerText.trim();
          return text && text !== before;
        },
        wrongPasswordText,
      );
      assert.equal(await page.locator('main[data-page="dashboard"]').count(), 0);
      assert.equal(await sessionStatus(page), 401);
      await session.screenshot('locked-out');
      session.assertClean();
    });
  });
});
