// A viewer sees no control that changes anything (no [data-action] on any page), and a change
// forced from the page with the viewer's own cookie and CSRF token is refused by the agent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Agent } from './support/agent.mjs';
import { Session, launchBrowser, pages } from './support/browser.mjs';

const viewerPassword = 'Viewer-reads-only-1';
let agent;
let browser;
let session;

before(async () => {
  agent = await Agent.start();
  await agent.setUpAdmin();
  await agent.addUser('vera', 'viewer', viewerPassword);
  // Things a viewer could try to change on the access page.
  await agent.ok('POST', '/api/v1/users', { name: 'alice', role: 'operator' });
  await agent.ok('POST', '/api/v1/tokens', { name: 'ci-pipeline', role: 'viewer' });
  browser = await launchBrowser();
  session = await Session.open(browser, agent, { screenshotsAs: 'viewer' });
});

after(async () => {
  await session?.close();
  await browser?.close();
  await agent?.stop();
});

async function actions(page) {
  return page.locator('[data-action]').evaluateAll((els) =>
    els.map((e) => `${e.tagName.toLowerCase()}[data-action=${e.dataset.action}]`),
  );
}

describe('viewer', () => {
  it('sees no mutating control on any page', async () => {
    const { page } = session;
    await session.login('vera', viewerPassword);
    const linked = await page.locator('a[data-nav]').evaluateAll((as) => as.map((a) => a.dataset.nav));
    for (const name of ['dashboard', 'hardware', 'models', 'system']) {
      assert.ok(linked.includes(name), `a viewer reads ${name}: ${linked}`);
    }
    assert.ok(!linked.includes('audit'), 'a viewer has no audit:read, so no link to the audit log');
    for (const name of linked) {
      await session.follow(name);
      assert.deepEqual(await actions(page), [], `controls on ${name}`);
      await session.screenshot(name);
    }
    // The console asks only for what the role may read.
    assert.deepEqual(session.apiRefusals.filter((r) => r.endsWith('403')), [], 'refused reads on linked pages');
    // Pages typed into the address bar, linked or not, offer nothing either.
    for (const name of pages) {
      await page.goto(session.url(name));
      await page.locator('main[data-ready="true"]').waitFor();
      assert.deepEqual(await actions(page), [], `controls on #/${name}`);
    }
    session.assertClean();
  });

  it('is refused a change forced with its own cookie and CSRF token', async () => {
    const { page } = session;
    await session.open('dashboard');
    const forced = [
      ['POST', '/api/v1/users', { name: 'mallory', role: 'admin' }],
      ['PATCH', '/api/v1/users/vera', { role: 'admin' }],
      ['DELETE', '/api/v1/users/alice'],
      ['POST', '/api/v1/tokens', { name: 'stolen', role: 'admin' }],
      ['POST', '/api/v1/keys', { name: 'stolen' }],
      ['POST', '/api/v1/models', { source: '/srv/model.gguf', name: 'planted' }],
    ];
    const answers = await page.evaluate(async (requests) => {
      const session = await (await fetch('/api/v1/auth/session')).json();
      const out = [];
      for (const [method, url, body] of requests) {
        const reply = await fetch(url, {
          method,
          headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        out.push({ request: `${method} ${url}`, status: reply.status, code: (await reply.json()).error?.code });
      }
      return { user: session.user ?? session.name ?? session.username, role: session.role, csrf: !!session.csrf_token, out };
    }, forced);
    assert.equal(answers.role, 'viewer');
    assert.ok(answers.csrf, 'the session has a CSRF token');
    for (const answer of answers.out) {
      assert.deepEqual({ status: answer.status, code: answer.code }, { status: 403, code: 'forbidden' }, answer.request);
    }

    const { users } = await agent.ok('GET', '/api/v1/users');
    assert.deepEqual(users.map((u) => `${u.name}:${u.role}`).sort(), ['admin:admin', 'alice:operator', 'vera:viewer']);
    const { tokens } = await agent.ok('GET', '/api/v1/tokens');
    assert.deepEqual(tokens.map((t) => t.name), ['ci-pipeline']);
    assert.deepEqual((await agent.ok('GET', '/api/v1/keys')).keys, []);
    assert.deepEqual((await agent.ok('GET', '/api/v1/models')).models, []);
    session.assertClean();
  });
});
