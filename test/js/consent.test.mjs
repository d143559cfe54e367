// Consent before sharing, as an app using graphql-ws sees it: an invitation
// arrives live on `notifications`, the invitee accepts it and only then
// shares the team; a member leaves a project and their projectUpdates ends
// with FORBIDDEN; a stranger gets the same answer as an unknown id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { startServer, makeProject, createTask, eventQueue, fireUntilEvent, quietFor, takeWhere, describe } from './harness.mjs';

const NOTIFICATIONS = 'subscription { notifications { type notification { message senderId } } }';

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

async function subscribe(user, query, variables) {
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { token: await srv.token(user) },
    retryAttempts: 0,
  });
  clients.push(client);
  const q = eventQueue();
  client.subscribe({ query, variables }, q);
  return q;
}

/** The extensions.code of a failed POST /graphql, with the whole body. */
async function codeOf(user, query, variables) {
  const { body } = await srv.post(await srv.token(user), query, variables);
  return { code: body.errors?.[0]?.extensions?.code, body: JSON.stringify(body) };
}

test('an invitation arrives live; the invitee shares the team only after accepting', async () => {
  const q = await subscribe('carol', NOTIFICATIONS);
  // Live once carol has seen a note to herself.
  await fireUntilEvent(q, (i) =>
    srv.gql('carol', 'mutation ($m: String!) { sendNotification(userId: "carol", message: $m) { id } }', { m: `note ${i}` }),
  );
  await quietFor(q, 200);

  const { createTeam: team } = await srv.gql('alice', 'mutation { createTeam(input: { name: "Garden" }) { id } }');
  await srv.gql('alice', 'mutation ($t: ID!) { addTeamMember(teamId: $t, userId: "carol") { id } }', { t: team.id });
  const got = await takeWhere(q, (r) => r.data?.notifications?.notification?.senderId === 'alice', 5000, 'the invitation notice');
  assert.equal(got.data.notifications.type, 'NOTIFICATION_SENT');
  assert.match(got.data.notifications.notification.message, /"Garden"/);

  const { invitations } = await srv.gql('carol', '{ invitations { teamId teamName invitedBy } }');
  assert.deepEqual(invitations, [{ teamId: team.id, teamName: 'Garden', invitedBy: 'alice' }]);
  assert.equal((await codeOf('carol', 'query ($t: ID!) { team(id: $t) { id } }', { t: team.id })).code, 'FORBIDDEN');
  assert.equal((await codeOf('alice', '{ user(id: "carol") { email } }')).code, 'NOT_FOUND');

  const { acceptInvitation } = await srv.gql('carol', 'mutation ($t: ID!) { acceptInvitation(teamId: $t) { id members { id } } }', {
    t: team.id,
  });
  assert.deepEqual(acceptInvitation.members.map((m) => m.id), ['alice', 'carol']);
  const { user } = await srv.gql('alice', '{ user(id: "carol") { id online } }');
  assert.deepEqual(user, { id: 'carol', online: true });
  assert.deepEqual((await srv.gql('carol', '{ invitations { teamId } }')).invitations, []);
});

test('a member leaves a project: their projectUpdates ends with FORBIDDEN', async () => {
  const projectId = await makeProject(srv, 'alice', 'Orchard', ['bob']);
  const q = await subscribe('bob', 'subscription ($p: ID!) { projectUpdates(projectId: $p) { type member { id } } }', {
    p: projectId,
  });
  await fireUntilEvent(q, (i) => createTask(srv, 'alice', { title: `warm-up ${i}`, projectId }));
  await quietFor(q, 200);

  await srv.gql('bob', 'mutation ($p: ID!) { removeProjectMember(projectId: $p, userId: "bob") { id } }', { p: projectId });
  const end = await q.end(5000, "bob's projectUpdates to end");
  const codes = (Array.isArray(end.error) ? end.error : [end.error]).map((e) => e?.extensions?.code);
  assert.deepEqual(codes, ['FORBIDDEN'], `ended with ${describe(end)}`);
  for (const item of q.items) {
    assert.equal(item.data?.projectUpdates?.type, 'PROJECT_MEMBER_REMOVED', `after leaving bob saw ${describe(item)}`);
  }
});

test('a user who shares nothing with you and an unknown id get the same bytes', async () => {
  const { createProject: p } = await srv.gql('dave', 'mutation { createProject(input: { name: "Bait" }) { id } }');
  for (const [query, vars] of [
    ['query ($u: ID!) { user(id: $u) { email online } }', {}],
    ['mutation ($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u) { id } }', { p: p.id }],
    ['mutation ($u: ID!) { sendNotification(userId: $u, message: "hi") { id } }', {}],
  ]) {
    const carol = await codeOf('dave', query, { ...vars, u: 'carol' });
    const ghost = await codeOf('dave', query, { ...vars, u: 'ghost' });
    assert.equal(carol.code, 'NOT_FOUND', carol.body);
    assert.equal(carol.body, ghost.body);
  }
});
