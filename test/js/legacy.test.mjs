// The legacy subscriptions-transport-ws client (subprotocol graphql-ws), as
// old Apollo apps still ship it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import { startServer, createTask, eventQueue, fireUntilEvent, quietFor, takeWhere, withTimeout, describe } from './harness.mjs';

let srv;

before(async () => {
  srv = await startServer({ users: ['alice', 'bob'] });
});

after(async () => {
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

/** A legacy client; connectionErrors collects connection_error payloads. */
function legacyClient(token, connectionErrors = []) {
  return new SubscriptionClient(
    srv.wsURL,
    {
      connectionParams: { token },
      reconnect: false,
      lazy: true,
      timeout: 5000,
      connectionCallback: (err) => {
        if (err) connectionErrors.push(err);
      },
    },
    WebSocket,
  );
}

test('the legacy graphql-ws protocol negotiates and delivers an event', async () => {
  const client = legacyClient(await srv.token('alice'));
  const connected = new Promise((resolve) => client.onConnected(resolve));
  const q = eventQueue();
  const sub = client.request({ query: 'subscription { taskUpdates { type task { id title } } }' }).subscribe(q);
  try {
    await withTimeout(connected, 5000, 'connection_ack (legacy)');
    assert.equal(client.client.protocol, 'graphql-ws', 'server chose the legacy subprotocol');
    await fireUntilEvent(q, (i) => createTask(srv, 'alice', { title: `warm-up ${i}` }));
    await quietFor(q, 200);
    const task = await createTask(srv, 'alice', { title: 'Legacy works' });
    const got = await takeWhere(q, (r) => r.data?.taskUpdates?.task?.id === task.id, 5000, 'the legacy data message');
    assert.equal(got.errors, undefined, `errors: ${JSON.stringify(got.errors)}`);
    assert.deepEqual(got.data.taskUpdates, { type: 'TASK_CREATED', task: { id: task.id, title: 'Legacy works' } });
  } finally {
    sub.unsubscribe();
    client.close();
  }
});

test('the legacy protocol refuses a bad token', async () => {
  const connectionErrors = [];
  const client = legacyClient('not-a-jwt', connectionErrors);
  const q = eventQueue();
  let acked = false;
  client.onConnected(() => (acked = true));
  const outcome = new Promise((resolve) => {
    client.onDisconnected(() => resolve('disconnected'));
    client.onError((e) => resolve(`error ${describe(e)}`));
  });
  const sub = client.request({ query: 'subscription { systemUpdates { message } }' }).subscribe(q);
  try {
    // connection_error and/or a close: the client must not end up connected.
    const how = await withTimeout(outcome, 5000, 'the refusal');
    assert.match(how, /disconnected|error/, `connection_error payloads: ${JSON.stringify(connectionErrors)}`);
    await quietFor(q, 200);
    assert.equal(acked, false, 'a bad token must not be acknowledged');
    assert.notEqual(client.status, WebSocket.OPEN, 'the socket is not left open');
    assert.deepEqual(q.items, []);
  } finally {
    sub.unsubscribe();
    client.close();
  }
});
