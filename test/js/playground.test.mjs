// The GraphiQL playground in a real browser (Debian chromium driven by
// playwright-core): a person pastes a token, runs the default subscription,
// and sees a task created elsewhere appear in the result pane.
//
// Skips when /usr/bin/chromium is absent, except with CI=true, where it must
// run (install-browser.sh installs chromium). The screenshot goes to
// $PLAYGROUND_SCREENSHOT or a temp file; its path is printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, createTask, withTimeout, sleep } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const skip =
  !existsSync(CHROMIUM) && process.env.CI !== 'true'
    ? `no chromium at ${CHROMIUM}: run test/js/install-browser.sh to include the browser test (it always runs with CI=true)`
    : false;

// From NOTES: what headless Debian chromium needs here (no GPU, no network).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let srv;
let browser;

before(async () => {
  if (skip) return;
  srv = await startServer({ users: ['alice', 'bob'] });
  const { chromium } = await import('playwright-core');
  browser = await withTimeout(
    chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    30000,
    `chromium to start from ${CHROMIUM}`,
  );
});

after(async () => {
  if (browser) await browser.close();
  if (srv) {
    const { code, signal } = await srv.stop();
    assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
  }
});

/**
 * A fresh page that records what a careful reviewer would look at: page
 * errors, CSP violations, requests leaving the server, the Authorization
 * header of POST /graphql and each WebSocket's connection_init payload.
 */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const seen = { errors: [], csp: [], external: [], authHeaders: [], inits: [], introspections: [] };
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.csp.push(m.text());
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(srv.url + '/') && !u.startsWith('data:') && !u.startsWith(srv.wsURL)) seen.external.push(u);
    if (u === srv.httpURL && r.method() === 'POST') seen.authHeaders.push(r.headers().authorization ?? null);
  });
  page.on('response', (r) => {
    const req = r.request();
    if (req.url() === srv.httpURL && req.method() === 'POST' && /__schema/.test(req.postData() ?? '')) {
      seen.introspections.push({ status: r.status(), auth: req.headers().authorization ?? null });
    }
  });
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      try {
        const msg = JSON.parse(String(payload));
        if (msg.type === 'connection_init') seen.inits.push(msg.payload ?? null);
      } catch {
        /* not JSON: not ours to judge here */
      }
    });
  });
  return { context, page, seen };
}

const responseText = (page) => page.locator('.graphiql-response').innerText();

/** Waits until the result pane shows text, creating tasks meanwhile if asked. */
async function waitForResult(page, text, { fire, timeout = 10000 } = {}) {
  const deadline = Date.now() + timeout;
  for (let i = 0; ; i++) {
    if (fire) await fire(i);
    const shown = await responseText(page).catch(() => '');
    if (shown.includes(text)) return shown;
    if (Date.now() > deadline) {
      throw new Error(`the result pane never showed ${JSON.stringify(text)}; it shows:\n${shown}`);
    }
    await sleep(250);
  }
}

async function setToken(page, token) {
  await page.locator('#tp-token').fill(token);
  await page.locator('#tp-token').press('Enter');
  await page.locator('#tp-token').blur();
}

test('playground: token, default subscription, live event in the result pane', { skip, timeout: 90000 }, async (t) => {
  const aliceToken = await srv.token('alice');
  const bobToken = await srv.token('bob');
  const { context, page, seen } = await openPage();
  try {
    await page.goto(srv.url + '/');
    await page.locator('.graphiql-container').waitFor();
    assert.equal(await page.title(), 'taskpulse playground');

    // Without a token the server refuses everything 401, so the page asks
    // for nothing and says why.
    await page.locator('#tp-status', { hasText: 'no token' }).waitFor();
    await sleep(500);
    assert.deepEqual(seen.introspections, [], 'no schema request without a token');

    await setToken(page, aliceToken);
    await page.locator('#tp-status', { hasText: 'alice' }).waitFor();
    // The schema loads once the token is set.
    await withTimeout(
      (async () => {
        while (!seen.introspections.some((i) => i.status === 200 && i.auth === `Bearer ${aliceToken}`)) await sleep(50);
      })(),
      10000,
      `the schema fetched with alice's token: ${JSON.stringify(seen.introspections)}`,
    );

    // The default editor content is the taskUpdates subscription.
    const editor = await page.evaluate(() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue());
    assert.match(editor, /subscription\s*\{\s*taskUpdates/);
    assert.match(editor, /createTask/, 'the comment shows a mutation to try');

    await page.locator('.graphiql-execute-button').click();
    await page.locator('#tp-status', { hasText: 'socket connected' }).waitFor();
    await waitForResult(page, 'TASK_CREATED', {
      fire: (i) => createTask(srv, 'alice', { title: `warm-up ${i}` }),
    });
    const task = await createTask(srv, 'alice', { title: 'Seen in the browser' });
    const shown = await waitForResult(page, 'Seen in the browser');
    assert.match(shown, /"type": "TASK_CREATED"/);
    assert.ok(shown.includes(`"id": "${task.id}"`), `the pane shows the task id:\n${shown}`);
    assert.match(shown, /"cursor": "[^"]+"/);

    const shot = process.env.PLAYGROUND_SCREENSHOT || join(tmpdir(), `taskpulse-playground-${process.pid}.png`);
    await page.screenshot({ path: shot });
    t.diagnostic(`screenshot: ${shot}`);

    assert.deepEqual(seen.inits[0], { token: aliceToken }, 'connection_init carries {token}');
    // GraphiQL fetched the schema again with the token once it was set, and
    // every request from then on carried it.
    const first = seen.authHeaders.indexOf(`Bearer ${aliceToken}`);
    assert.ok(first >= 0, `no POST /graphql carried the token: ${JSON.stringify(seen.authHeaders)}`);
    assert.ok(
      seen.authHeaders.slice(first).every((h) => h === `Bearer ${aliceToken}`),
      `after the token was set every POST /graphql carried it: ${JSON.stringify(seen.authHeaders)}`,
    );

    // Changing the token reconnects; the running subscription continues as bob.
    await setToken(page, bobToken);
    await page.locator('#tp-status', { hasText: 'bob' }).waitFor();
    await withTimeout(
      (async () => {
        while (!seen.inits.some((p) => p?.token === bobToken)) await sleep(50);
      })(),
      10000,
      "a connection_init with bob's token",
    );
    await waitForResult(page, 'Bob was here', {
      fire: (i) => (i % 4 === 0 ? createTask(srv, 'bob', { title: 'Bob was here' }) : undefined),
    });

    // A token the server refuses: the socket closes 4403 and the bar says so.
    await setToken(page, 'not-a-jwt');
    await page.locator('#tp-status', { hasText: '4403' }).waitFor();
    assert.match(await responseText(page), /4403/);

    assert.deepEqual(seen.errors, [], 'no uncaught page errors');
    assert.deepEqual(seen.csp, [], 'no Content-Security-Policy violations');
    assert.deepEqual(seen.external, [], 'the page loads nothing from outside the server');
  } finally {
    await context.close();
  }
});

test('playground: #token=<jwt> fills the token, leaves the address bar, and is kept across reloads', { skip, timeout: 60000 }, async () => {
  const token = await srv.token('alice');
  const { context, page, seen } = await openPage();
  try {
    await page.goto(`${srv.url}/#token=${token}`);
    await page.locator('.graphiql-container').waitFor();
    assert.equal(await page.locator('#tp-token').inputValue(), token);
    assert.equal(new URL(page.url()).hash, '', 'the token is removed from the URL');
    await page.locator('#tp-status', { hasText: 'alice' }).waitFor();

    await page.reload();
    await page.locator('.graphiql-container').waitFor();
    assert.equal(await page.locator('#tp-token').inputValue(), token, 'kept in localStorage');

    await page.locator('#tp-clear').click();
    assert.equal(await page.locator('#tp-token').inputValue(), '');
    await page.reload();
    await page.locator('.graphiql-container').waitFor();
    assert.equal(await page.locator('#tp-token').inputValue(), '', 'Clear forgets the token');
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.csp, []);
  } finally {
    await context.close();
  }
});
