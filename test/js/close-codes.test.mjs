// Authentication on the WebSocket as a client sees it: every bad token is
// closed 4403; graphql-ws's retries stay bounded; a client that does not retry
// 4403 (what the README recommends) connects once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { startServer, eventQueue, withTimeout, sleep, describe } from './harness.mjs';

const SUB = 'subscription { systemUpdates { type message } }';

let srv;

before(async () => {
  srv = await startServer({ users: ['alice'] });
});

after(async () => {
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 JWT signed with key (the raw UTF-8 bytes, as JWT_SECRET is used). */
function jwt(claims, key, header = { alg: 'HS256', typ: 'JWT' }) {
  const head = `${b64url(header)}.${b64url(claims)}`;
  if (header.alg === 'none') return `${head}.`;
  return `${head}.${createHmac('sha256', Buffer.from(key, 'utf8')).update(head).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * Opens a raw graphql-transport-ws socket, sends connection_init with the
 * payload, and resolves with the first of: {ack: true} or {close: code}.
 */
function rawInit(payload, { headers } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(srv.wsURL, 'graphql-transport-ws', { headers });
      ws.on('open', () => {
        ws.send(JSON.stringify(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload }));
      });
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data));
        if (msg.type === 'connection_ack') {
          resolve({ ack: true });
          ws.close(1000);
        }
      });
      ws.on('close', (code) => resolve({ close: code }));
      ws.on('error', reject);
    }),
    8000,
    'connection_ack or close',
  );
}

test('connection_init: good tokens are acknowledged, every bad one is closed 4403', async (t) => {
  const secret = srv.env.JWT_SECRET;
  const good = await srv.token('alice');
  const cases = [
    { name: 'token from `taskpulse token`', payload: { token: good }, want: { ack: true } },
    { name: 'Authorization in the payload', payload: { Authorization: `Bearer ${good}` }, want: { ack: true } },
    { name: 'Authorization header on the upgrade', payload: undefined, headers: { Authorization: `Bearer ${good}` }, want: { ack: true } },
    { name: 'no payload', payload: undefined, want: { close: 4403 } },
    { name: 'empty token', payload: { token: '' }, want: { close: 4403 } },
    { name: 'not a JWT', payload: { token: 'not-a-jwt' }, want: { close: 4403 } },
    { name: 'signed with another key', payload: { token: jwt({ sub: 'alice', exp: now() + 3600 }, 'another key') }, want: { close: 4403 } },
    { name: 'alg none', payload: { token: jwt({ sub: 'alice', exp: now() + 3600 }, '', { alg: 'none', typ: 'JWT' }) }, want: { close: 4403 } },
    { name: 'expired a minute ago', payload: { token: jwt({ sub: 'alice', exp: now() - 60 }, secret) }, want: { close: 4403 } },
    { name: 'no exp', payload: { token: jwt({ sub: 'alice' }, secret) }, want: { close: 4403 } },
    { name: 'unknown user', payload: { token: jwt({ sub: 'zed', exp: now() + 3600 }, secret) }, want: { close: 4403 } },
    { name: 'no sub', payload: { token: jwt({ exp: now() + 3600 }, secret) }, want: { close: 4403 } },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      assert.deepEqual(await rawInit(c.payload, { headers: c.headers }), c.want);
    });
  }
});

test("graphql-ws's default retry gives up after retryAttempts; the error is the 4403 CloseEvent", async () => {
  let connecting = 0;
  const closes = [];
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { token: 'not-a-jwt' },
    retryAttempts: 2,
    retryWait: () => sleep(20),
    on: {
      connecting: () => connecting++,
      closed: (e) => closes.push(e.code),
    },
  });
  try {
    const q = eventQueue();
    client.subscribe({ query: SUB }, q);
    const end = await q.end(15000, 'the client to give up');
    assert.ok(end.error, `the subscription ends with an error, not ${describe(end)}`);
    assert.equal(end.error.constructor.name, 'CloseEvent');
    assert.equal(end.error.code, 4403);
    assert.equal(connecting, 3, 'one attempt and two retries');
    assert.deepEqual(closes, [4403, 4403, 4403]);
    assert.deepEqual(q.items, []);
  } finally {
    await client.dispose();
  }
});

test('with shouldRetry excluding 4403 the client connects once and reports 4403', async () => {
  let connecting = 0;
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { token: 'not-a-jwt' },
    retryAttempts: 5,
    retryWait: () => sleep(20),
    shouldRetry: (e) => e.code !== 4403,
    on: { connecting: () => connecting++ },
  });
  try {
    const q = eventQueue();
    client.subscribe({ query: SUB }, q);
    const end = await q.end(8000, 'the 4403 error');
    assert.equal(end.error?.code, 4403, `ended with ${describe(end)}`);
    await sleep(300); // a retry, if any, would have started by now
    assert.equal(connecting, 1);
  } finally {
    await client.dispose();
  }
});

test('a connected token is closed 4403 soon after it expires', async () => {
  const exp = now() + 2;
  const token = jwt({ sub: 'alice', exp, iat: now() }, srv.env.JWT_SECRET);
  let acked = false;
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { token },
    retryAttempts: 0,
    on: { connected: () => (acked = true) },
  });
  try {
    const q = eventQueue();
    client.subscribe({ query: SUB }, q);
    // Contract: closed within 1 s of exp plus the leeway (at most 5 s).
    const end = await q.end(12000, 'the close after expiry');
    const late = Date.now() / 1000 - exp;
    assert.ok(acked, 'the token was good when it connected');
    assert.equal(end.error?.code, 4403, `ended with ${describe(end)}`);
    assert.ok(late >= -1 && late <= 6.5, `closed ${late.toFixed(1)} s after exp`);
  } finally {
    await client.dispose();
  }
});
