// Apollo Client 3 as a React app would set it up (HttpLink for queries and
// mutations, GraphQLWsLink for subscriptions, split on the operation type).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { ApolloClient, InMemoryCache, HttpLink, split, gql } from '@apollo/client/core/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { getMainDefinition } from '@apollo/client/utilities/index.js';
import { startServer, makeProject, createTask, eventQueue, fireUntilEvent, quietFor, takeWhere, describe } from './harness.mjs';

const PROJECT_UPDATES = gql`
  subscription ($projectId: ID!) {
    projectUpdates(projectId: $projectId) {
      type
      cursor
      project { id name }
      task { id title status }
      member { id }
    }
  }
`;

const UPDATE_TASK = gql`
  mutation ($id: ID!, $input: UpdateTaskInput!) {
    updateTask(id: $id, input: $input) { id title status }
  }
`;

// GraphQLWsLink's error path reads the global WebSocket (WebSocket.CLOSED),
// which browsers have and Node 20 does not; without this every subscription
// error becomes "ReferenceError: WebSocket is not defined".
globalThis.WebSocket ??= WebSocket;

let srv;
const apollos = [];

before(async () => {
  srv = await startServer();
});

after(async () => {
  for (const { client, ws } of apollos) {
    client.stop();
    await ws.dispose();
  }
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

async function apolloFor(user) {
  const token = await srv.token(user);
  const ws = createClient({ url: srv.wsURL, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0 });
  const link = split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === 'OperationDefinition' && def.operation === 'subscription';
    },
    new GraphQLWsLink(ws),
    new HttpLink({ uri: srv.httpURL, headers: { authorization: `Bearer ${token}` } }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  apollos.push({ client, ws });
  return client;
}

function watch(client, query, variables) {
  const q = eventQueue();
  const sub = client.subscribe({ query, variables }).subscribe(q);
  return { q, stop: () => sub.unsubscribe() };
}

/** The extensions.code values an Apollo error carries. */
function codesOf(err) {
  const list = [...(err?.graphQLErrors ?? []), ...(err?.errors ?? []), ...(err?.protocolErrors ?? [])];
  return list.map((e) => e?.extensions?.code);
}

test('client.subscribe(projectUpdates) receives the TASK_UPDATED that client.mutate(updateTask) caused', async () => {
  const projectId = await makeProject(srv, 'alice', 'Website', ['bob']);
  const task = await createTask(srv, 'alice', { title: 'Pick a font', projectId });
  const client = await apolloFor('bob');
  const { q, stop } = watch(client, PROJECT_UPDATES, { projectId });

  await fireUntilEvent(q, (i) =>
    client.mutate({ mutation: UPDATE_TASK, variables: { id: task.id, input: { title: `Pick a font (${i})` } } }),
  );
  await quietFor(q, 200);

  const { data } = await client.mutate({ mutation: UPDATE_TASK, variables: { id: task.id, input: { status: 'DONE' } } });
  assert.equal(data.updateTask.status, 'DONE');

  const got = await takeWhere(q, (r) => r.data?.projectUpdates?.task?.status === 'DONE', 5000, 'the TASK_UPDATED to DONE');
  assert.equal(got.errors, undefined, `errors: ${JSON.stringify(got.errors)}`);
  const ev = got.data.projectUpdates;
  assert.equal(ev.type, 'TASK_UPDATED');
  assert.equal(ev.project.id, projectId);
  assert.equal(ev.project.name, 'Website');
  assert.equal(ev.task.id, task.id);
  assert.equal(ev.task.status, 'DONE');
  assert.notEqual(ev.cursor, '');
  stop();
});

test('a member removed from the project: the open projectUpdates ends with FORBIDDEN, and a new one is refused', async () => {
  const projectId = await makeProject(srv, 'alice', 'Secret plans', ['carol']);
  const task = await createTask(srv, 'alice', { title: 'Draft', projectId });
  const carol = await apolloFor('carol');
  const { q } = watch(carol, PROJECT_UPDATES, { projectId });

  await fireUntilEvent(q, (i) =>
    srv.gql('alice', 'mutation ($id: ID!, $t: String!) { updateTask(id: $id, input: { title: $t }) { id } }', {
      id: task.id,
      t: `Draft ${i}`,
    }),
  );
  await quietFor(q, 200);

  await srv.gql('alice', 'mutation ($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) { id } }', {
    p: projectId,
    u: 'carol',
  });
  const end = await q.end(5000, "carol's subscription to end");
  assert.ok(end.error, `ends with an error, not ${describe(end)}`);
  assert.deepEqual(codesOf(end.error), ['FORBIDDEN'], `error: ${describe(end.error)}`);
  // Whatever came before the error may only be about carol's own removal.
  for (const item of q.items) {
    const ev = item.data?.projectUpdates;
    assert.equal(ev?.type, 'PROJECT_MEMBER_REMOVED', `after removal carol saw ${JSON.stringify(item)}`);
    assert.equal(ev.member?.id, 'carol');
  }

  const again = watch(carol, PROJECT_UPDATES, { projectId });
  const refused = await again.q.end(5000, 'the refused subscription to end');
  assert.ok(refused.error, `a new subscription is refused, not ${describe(refused)}`);
  assert.deepEqual(codesOf(refused.error), ['FORBIDDEN'], `error: ${describe(refused.error)}`);
  assert.deepEqual(again.q.items, []);
});
