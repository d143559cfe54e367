// graphql-sse's client in its default distinct connections mode: one
// POST /graphql with Accept: text/event-stream per subscription.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-sse';
import { startServer, makeProject, createTask, eventQueue, fireUntilEvent, quietFor, takeWhere, describe } from './harness.mjs';

let srv;

before(async () => {
  srv = await startServer();
});

after(async () => {
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

function sseClient(token) {
  return createClient({
    url: srv.httpURL,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
}

test('a project member receives TASK_CREATED over SSE', async () => {
  const projectId = await makeProject(srv, 'alice', 'Ops', ['bob']);
  const client = sseClient(await srv.token('bob'));
  const q = eventQueue();
  const stop = client.subscribe({ query: 'subscription { taskUpdates { type cursor task { id title projectId } } }' }, q);
  try {
    // Live once bob has seen an event; then the one under test.
    await fireUntilEvent(q, (i) => createTask(srv, 'alice', { title: `warm-up ${i}`, projectId }));
    await quietFor(q, 200);
    const task = await createTask(srv, 'alice', { title: 'Rotate the keys', projectId });
    const got = await takeWhere(q, (r) => r.data?.taskUpdates?.task?.id === task.id, 5000, 'TASK_CREATED over SSE');
    assert.equal(got.errors, undefined, `errors: ${JSON.stringify(got.errors)}`);
    assert.deepEqual(got.data.taskUpdates.task, { id: task.id, title: 'Rotate the keys', projectId });
    assert.equal(got.data.taskUpdates.type, 'TASK_CREATED');
    assert.notEqual(got.data.taskUpdates.cursor, '');
  } finally {
    stop();
    client.dispose();
  }
});

/** The extensions.code values a client sees, from a result or an error. */
function codesSeen(q, end) {
  const fromItems = q.items.flatMap((r) => r.errors ?? []).map((e) => e.extensions?.code);
  const fromError = Array.isArray(end.error) ? end.error.map((e) => e.extensions?.code) : [];
  return [...fromItems, ...fromError];
}

for (const { name, token } of [
  { name: 'no token', token: null },
  { name: 'a malformed token', token: 'not-a-jwt' },
]) {
  test(`an SSE subscription with ${name} is refused`, async () => {
    const client = sseClient(token);
    const q = eventQueue();
    const stop = client.subscribe({ query: 'subscription { systemUpdates { message } }' }, q);
    try {
      const end = await q.end(5000, 'the refusal');
      // A result with an UNAUTHENTICATED error, or a refused stream request
      // (graphql-sse reports a non-200 response as an error).
      const codes = codesSeen(q, end);
      const text = end.error === undefined ? '' : describe(end.error);
      assert.ok(
        codes.includes('UNAUTHENTICATED') || /\b401\b|UNAUTHENTICATED/.test(text),
        `saw ${JSON.stringify(q.items)} then ${JSON.stringify(end)} ${text}`,
      );
      assert.deepEqual(
        q.items.filter((r) => r.data),
        [],
        'no data for an unauthenticated stream',
      );
    } finally {
      stop();
      client.dispose();
    }
  });
}
