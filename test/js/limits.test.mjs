// Rate limits and abuse blocks as the graphql-ws client sees them: an
// operation past RATE_LIMIT_PER_MIN is an error with extensions.retryAfter
// and the socket stays; a user blocked for repeated refusals is closed 1008,
// which graphql-ws does not retry; an upgrade past MAX_CONNS_PER_IP is a 429
// with Retry-After.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { startServer, withTimeout, sleep } from './harness.mjs';

const CREATE = 'mutation($t: String!) { createTask(input: {title: $t}) { id } }';

let srv;

before(async () => {
  srv = await startServer({
    users: ['alice', 'bob'],
    env: {
      RATE_LIMIT_PER_MIN: '3',
      ABUSE_THRESHOLD: '3',
      ABUSE_WINDOW: '1m',
      ABUSE_COOLDOWN: '2s',
      MAX_CONNS_PER_IP: '3',
    },
  });
});

after(async () => {
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

/** Runs one operation; resolves to {data} or {errors} (never rejects on a GraphQL error). */
function run(client, query, variables) {
  return withTimeout(
    new Promise((resolve) => {
      let result;
      client.subscribe(
        { query, variables },
        {
          next: (r) => (result = r),
          error: (err) => resolve({ errors: Array.isArray(err) ? err : [err] }),
          complete: () => resolve(result),
        },
      );
    }),
    5000,
    `the result of ${query.slice(0, 40)}`,
  );
}

test('rate limit, then a block: RATE_LIMITED with retryAfter on an open socket, then 1008 and no retry', async () => {
  const token = await srv.token('alice');
  const events = [];
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { token },
    lazy: false,
    onNonLazyError: () => {}, // the 1008 close; asserted through `closed` below
    retryAttempts: 5, // graphql-ws's default: it would retry a close it does not deem fatal
    on: {
      connecting: () => events.push('connecting'),
      connected: () => events.push('connected'),
      closed: (e) => events.push(`closed ${e.code}`),
    },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await run(client, CREATE, { t: `task ${i}` });
      assert.equal(r.errors, undefined, `mutation ${i}: ${JSON.stringify(r.errors)}`);
    }
    // The 4th: refused, told when to retry (one every 20 s at 3 a minute).
    const refused = await run(client, CREATE, { t: 'one too many' });
    const e = refused.errors?.[0];
    assert.equal(e?.extensions?.code, 'RATE_LIMITED', JSON.stringify(refused));
    assert.ok(Number.isInteger(e.extensions.retryAfter) && e.extensions.retryAfter >= 19 && e.extensions.retryAfter <= 20, `retryAfter ${e.extensions.retryAfter}`);
    // Queries are not counted, and the socket is the same one.
    const me = await run(client, '{ me { id } }');
    assert.deepEqual(me.data, { me: { id: 'alice' } });
    assert.deepEqual(events, ['connecting', 'connected']);

    // Two more refusals reach ABUSE_THRESHOLD 3: blocked.
    const second = await run(client, CREATE, { t: 'again' });
    assert.equal(second.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
    const third = await srv.post(token, CREATE, { t: 'over HTTP' });
    assert.equal(third.body.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
    await withTimeout(
      (async () => {
        while (!events.includes('closed 1008')) await sleep(20);
      })(),
      5000,
      'the 1008 close',
    );
    await sleep(500);
    assert.deepEqual(events, ['connecting', 'connected', 'closed 1008'], 'graphql-ws must not reconnect after 1008');

    // During the cooldown: 429 with Retry-After; another user is served.
    const res = await fetch(srv.httpURL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    assert.equal(res.status, 429);
    const ra = Number(res.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 2, `Retry-After ${res.headers.get('retry-after')}`);
    assert.equal((await res.json()).errors[0].extensions.code, 'RATE_LIMITED');
    assert.deepEqual((await srv.gql('bob', '{ me { id } }')).me, { id: 'bob' });

    // After it: served again.
    await sleep(ra * 1000 + 200);
    assert.deepEqual((await srv.gql('alice', '{ me { id } }')).me, { id: 'alice' });
  } finally {
    await client.dispose();
  }
});

test('an upgrade past MAX_CONNS_PER_IP is 429 with Retry-After; closing one frees a slot', async () => {
  const open = (headers) =>
    withTimeout(
      new Promise((resolve) => {
        const ws = new WebSocket(srv.wsURL, 'graphql-transport-ws', { headers });
        ws.on('open', () => resolve({ ws }));
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body }));
        });
        ws.on('error', () => {});
      }),
      5000,
      'the upgrade',
    );
  const held = [];
  for (let i = 0; i < 3; i++) {
    const r = await open();
    assert.ok(r.ws, `connection ${i + 1} of 3 refused: ${r.status}`);
    held.push(r.ws);
  }
  const refused = await open();
  assert.equal(refused.status, 429);
  assert.equal(refused.retryAfter, '5');
  assert.equal(JSON.parse(refused.body).errors[0].extensions.code, 'RATE_LIMITED');

  held.pop().close(1000);
  let again;
  for (let i = 0; i < 50 && !again?.ws; i++) {
    await sleep(20);
    again = await open();
  }
  assert.ok(again?.ws, 'no slot after a socket closed');
  held.push(again.ws);
  for (const ws of held) ws.close(1000);
});
