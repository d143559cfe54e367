// HTTPS and WSS served directly (TLS_CERT_FILE, TLS_KEY_FILE) with a
// certificate the test makes: the graphql-ws client over wss:// trusting
// the test CA, HTTP/2 from Node's http2 client, a certificate renewed
// while a subscription is open, and the playground in Chromium (page over
// HTTP/2, subscription over wss://).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { connect as h2Connect } from 'node:http2';
import { createClient } from 'graphql-ws';
import { startServer, createTask, eventQueue, fireUntilEvent, takeWhere, withTimeout, normSerial, sleep } from './harness.mjs';

const TASK_UPDATES = 'subscription { taskUpdates { type task { id title } } }';

let srv;
const clients = [];

before(async () => {
  srv = await startServer({ tls: true });
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

/** A graphql-ws client over wss:// trusting the test CA; counts its connections. */
async function connect(user) {
  const token = await srv.token(user);
  const stats = { connected: 0, closed: 0 };
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: srv.WebSocket,
    connectionParams: { token },
    retryAttempts: 0,
    on: { connected: () => stats.connected++, closed: () => stats.closed++ },
  });
  clients.push(client);
  return { client, stats };
}

/** The serial of the certificate a new TLS handshake gets. */
async function peerSerial() {
  return normSerial((await tlsPeer()).serialNumber);
}

test('the server says https:// and the graphql-ws client over wss:// receives an event', async () => {
  assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(srv.wsURL, /^wss:\/\//);
  const { client } = await connect('alice');
  const q = eventQueue();
  client.subscribe({ query: TASK_UPDATES }, q);
  const { event } = await fireUntilEvent(q, (i) => createTask(srv, 'alice', { title: `over wss ${i}` }), {
    what: 'a TASK_CREATED over wss',
  });
  assert.equal(event.errors, undefined);
  assert.equal(event.data.taskUpdates.type, 'TASK_CREATED');
  assert.match(event.data.taskUpdates.task.title, /^over wss/);
});

test('an HTTPS query negotiates HTTP/2 with a client that offers it', async () => {
  const session = h2Connect(srv.url, { ca: srv.ca });
  try {
    await withTimeout(new Promise((ok, fail) => session.once('connect', ok).once('error', fail)), 5000, 'the HTTP/2 session');
    assert.equal(session.alpnProtocol, 'h2');
    const token = await srv.token('alice');
    const req = session.request({
      ':method': 'POST',
      ':path': '/graphql',
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
    });
    req.end(JSON.stringify({ query: '{ me { id } }' }));
    const [status, text] = await withTimeout(
      new Promise((ok, fail) => {
        let st;
        let body = '';
        req.on('response', (h) => (st = h[':status']));
        req.setEncoding('utf8');
        req.on('data', (c) => (body += c));
        req.on('end', () => ok([st, body]));
        req.on('error', fail);
      }),
      5000,
      'the HTTP/2 response',
    );
    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(text), { data: { me: { id: 'alice' } } });
  } finally {
    session.close();
  }
});

test('a certificate renewed while a wss:// subscription is open: new handshakes get it, the subscription keeps delivering', async () => {
  assert.equal(await peerSerial(), srv.serial);
  const bob = await connect('bob');
  const q = eventQueue();
  bob.client.subscribe({ query: TASK_UPDATES }, q);
  await fireUntilEvent(q, (i) => createTask(srv, 'bob', { title: `warm-up ${i}` }), { what: "bob's warm-up event" });

  const before = srv.serial;
  const renewed = await srv.renewCert();
  assert.notEqual(renewed, before);
  // The server looks at the files at most once a second, on a handshake.
  const deadline = Date.now() + 5000;
  let seen = await peerSerial();
  while (seen !== renewed) {
    assert.ok(Date.now() < deadline, `new handshakes still get ${seen} 5 s after the renewal, want ${renewed}`);
    await sleep(100);
    seen = await peerSerial();
  }

  // The socket opened before the renewal still delivers, without a reconnect.
  const task = await createTask(srv, 'bob', { title: 'after the renewal' });
  const got = await takeWhere(q, (r) => r.data?.taskUpdates?.task?.id === task.id, 5000, 'the event after the renewal');
  assert.equal(got.data.taskUpdates.type, 'TASK_CREATED');
  assert.deepEqual(bob.stats, { connected: 1, closed: 0 });

  // A new wss:// client handshakes with the renewed certificate and works.
  const carol = await connect('carol');
  const q2 = eventQueue();
  carol.client.subscribe({ query: TASK_UPDATES }, q2);
  await fireUntilEvent(q2, (i) => createTask(srv, 'carol', { title: `carol ${i}` }), { what: "carol's first event" });
});

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const noBrowser =
  !existsSync(CHROMIUM) && process.env.CI !== 'true'
    ? `no chromium at ${CHROMIUM}: run test/js/install-browser.sh to include the browser test (it always runs with CI=true)`
    : false;

test('the playground over HTTPS in Chromium: page over HTTP/2, live subscription over wss://', { skip: noBrowser, timeout: 90000 }, async () => {
  // Chromium trusts the server's key as a person who added the certificate
  // would (the flag takes the SHA-256 of its public key).
  const { raw } = await tlsPeer();
  const spki = createHash('sha256')
    .update(new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  const { chromium } = await import('playwright-core');
  const browser = await withTimeout(
    chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--ignore-certificate-errors-spki-list=${spki}`,
      ],
    }),
    30000,
    `chromium to start from ${CHROMIUM}`,
  );
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(10000);
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const token = await srv.token('alice');
    const res = await page.goto(`${srv.url}/#token=${token}`);
    assert.equal(res.status(), 200);
    await page.locator('.graphiql-container').waitFor();
    const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    assert.equal(proto, 'h2', 'the page came over HTTP/2');
    await page.locator('#tp-status', { hasText: 'alice' }).waitFor();
    await page.locator('.graphiql-execute-button').click();
    await page.locator('#tp-status', { hasText: 'socket connected' }).waitFor();
    assert.ok(sockets.length > 0 && sockets.every((u) => u.startsWith('wss://')), `WebSockets: ${sockets}`);
    const deadline = Date.now() + 10000;
    for (let i = 0; ; i++) {
      await createTask(srv, 'alice', { title: `in the browser ${i}` });
      const shown = await page.locator('.graphiql-response').innerText().catch(() => '');
      if (shown.includes('TASK_CREATED')) break;
      assert.ok(Date.now() < deadline, `no event in the result pane:\n${shown}`);
      await sleep(250);
    }
  } finally {
    await browser.close();
  }
});

/** The DER certificate a new handshake gets. */
function tlsPeer() {
  const { hostname, port } = new URL(srv.url);
  return withTimeout(
    new Promise((ok, fail) => {
      const socket = tlsConnect({ host: hostname, port: Number(port), ca: srv.ca }, () => {
        const cert = socket.getPeerCertificate();
        socket.end();
        ok(cert);
      });
      socket.on('error', fail);
    }),
    5000,
    'a TLS handshake',
  );
}
