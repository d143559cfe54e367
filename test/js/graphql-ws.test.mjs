// The graphql-ws client (graphql-transport-ws protocol) as an app uses it:
// a member sees a task created over HTTP; a non-member sees nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { startServer, makeProject, createTask, eventQueue, fireUntilEvent, quietFor, takeWhere, withTimeout, describe } from './harness.mjs';

const TASK_UPDATES = `subscription {
  taskUpdates { type cursor timestamp task { id title status projectId userId assignedTo } }
}`;

let srv;
const clients = [];

before(async () => {
  srv = await startServer();
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

async function connect(user) {
  const token = await srv.token(user);
  const client = createClient({ url: srv.wsURL, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0 });
  clients.push(client);
  return client;
}

function subscribe(client, query, variables) {
  const q = eventQueue();
  const dispose = client.subscribe({ query, variables }, q);
  return { q, dispose };
}

test('a project member receives TASK_CREATED for a task created over HTTP; a non-member receives nothing', async () => {
  const projectId = await makeProject(srv, 'alice', 'Launch', ['bob']);
  const alice = subscribe(await connect('alice'), TASK_UPDATES);
  const dave = subscribe(await connect('dave'), TASK_UPDATES);

  // Both subscriptions are live once each has seen an event of its own.
  await fireUntilEvent(alice.q, (i) => createTask(srv, 'alice', { title: `alice warm-up ${i}` }), {
    what: "alice's warm-up event",
  });
  await fireUntilEvent(dave.q, (i) => createTask(srv, 'dave', { title: `dave warm-up ${i}` }), {
    what: "dave's warm-up event",
  });
  await quietFor(alice.q, 200);
  await quietFor(dave.q, 0);

  const task = await createTask(srv, 'bob', { title: 'Write the launch post', projectId });

  const got = await takeWhere(alice.q, (r) => r.data?.taskUpdates?.task?.id === task.id, 5000, 'TASK_CREATED for the project task');
  assert.equal(got.errors, undefined, `errors: ${JSON.stringify(got.errors)}`);
  const ev = got.data.taskUpdates;
  assert.equal(ev.type, 'TASK_CREATED');
  assert.deepEqual(ev.task, {
    id: task.id,
    title: 'Write the launch post',
    status: 'TODO',
    projectId,
    userId: 'bob',
    assignedTo: null,
  });
  assert.equal(typeof ev.cursor, 'string');
  assert.notEqual(ev.cursor, '');
  assert.ok(!Number.isNaN(Date.parse(ev.timestamp)), `timestamp ${ev.timestamp} is RFC 3339`);

  // Late warm-ups of dave's own tasks aside, he gets nothing.
  const leaked = (await quietFor(dave.q, 500)).filter((r) => !/^dave warm-up/.test(r.data?.taskUpdates?.task?.title));
  assert.deepEqual(leaked, [], 'dave is not a member and must receive nothing');
  assert.equal(dave.q.ended, null, "dave's subscription stays open");

  alice.dispose();
  dave.dispose();
});

test('an event carries a cursor that differs from the previous one', async () => {
  const alice = subscribe(await connect('alice'), TASK_UPDATES);
  const { event: first } = await fireUntilEvent(alice.q, (i) => createTask(srv, 'alice', { title: `first ${i}` }));
  await quietFor(alice.q, 200);
  await createTask(srv, 'alice', { title: 'second' });
  const second = await takeWhere(alice.q, (r) => r.data?.taskUpdates?.task?.title === 'second', 5000, 'the second event');
  assert.equal(second.data.taskUpdates.task.title, 'second');
  assert.notEqual(second.data.taskUpdates.cursor, first.data.taskUpdates.cursor);
  alice.dispose();
});

test('iterate() ends cleanly when the client returns', async () => {
  const client = await connect('carol');
  const it = client.iterate({ query: TASK_UPDATES });
  const seen = withTimeout(it.next(), 8000, 'carol to receive her own task');
  // The subscription may not be registered yet; keep creating until one arrives.
  let result;
  for (let i = 0; i < 30 && !result; i++) {
    await createTask(srv, 'carol', { title: `carol ${i}` });
    result = await Promise.race([seen, new Promise((r) => setTimeout(() => r(undefined), 250))]);
  }
  assert.ok(result, 'carol received an event');
  assert.equal(result.done, false);
  assert.equal(result.value.data.taskUpdates.type, 'TASK_CREATED');
  assert.match(result.value.data.taskUpdates.task.title, /^carol \d+$/);
  const done = await withTimeout(it.return(), 2000, 'iterator return');
  assert.equal(done.done, true);
});

test('a client that reconnects with its last cursor gets what it missed, once, in order, then live', async () => {
  const RESUME = `subscription($after: String) {
    taskUpdates(after: $after) { type cursor task { title } }
  }`;
  const first = await connect('carol');
  const live = subscribe(first, RESUME, {});
  const { event: seen } = await fireUntilEvent(live.q, (i) => createTask(srv, 'carol', { title: `before ${i}` }), {
    what: "carol's first event",
  });
  // Late warm-ups aside, the last event the client saw is where it resumes.
  const late = await quietFor(live.q, 300);
  const last = (late.at(-1) ?? seen).data.taskUpdates;
  // The network drops; three changes happen meanwhile.
  live.dispose();
  await first.dispose();
  for (const title of ['missed 1', 'missed 2', 'missed 3']) await createTask(srv, 'carol', { title });

  const again = subscribe(await connect('carol'), RESUME, { after: last.cursor });
  const got = [];
  for (const title of ['missed 1', 'missed 2', 'missed 3']) {
    const r = await takeWhere(again.q, () => true, 5000, `the replay of ${title}`);
    assert.equal(r.errors, undefined, `errors: ${JSON.stringify(r.errors)}`);
    got.push(r.data.taskUpdates.task.title);
  }
  assert.deepEqual(got, ['missed 1', 'missed 2', 'missed 3'], 'the replay, in order');
  await createTask(srv, 'carol', { title: 'after' });
  const next = await takeWhere(again.q, () => true, 5000, 'the live event after the replay');
  assert.equal(next.data.taskUpdates.task.title, 'after');
  assert.deepEqual(await quietFor(again.q, 300), [], 'nothing twice');
  again.dispose();

  const bad = subscribe(await connect('carol'), RESUME, { after: 'not-a-cursor' });
  const ended = await bad.q.end(5000, 'the malformed cursor to be refused');
  assert.equal(ended.error?.[0]?.extensions?.code, 'BAD_USER_INPUT', describe(ended));
});
