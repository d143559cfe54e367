// Presence, as an app using graphql-ws sees it: a teammate's userActivity
// (online, what they are doing, offline after the grace), teamUpdates
// (membership changes and members' presence), and a stranger refused
// exactly as an unknown id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { startServer, makeTeam, eventQueue, fireUntilEvent, quietFor, takeWhere, describe } from './harness.mjs';

const ACTIVITY = `subscription ($u: ID!) { userActivity(userId: $u) {
  type cursor timestamp presence { userId status lastSeen currentPage activeTask activeProject } } }`;
const TEAM = `subscription ($t: ID!) { teamUpdates(teamId: $t) {
  type cursor team { id members { id } } member { id } presence { userId status currentPage } } }`;
const UPDATE = 'mutation ($in: PresenceInput!) { updatePresence(input: $in) { userId status currentPage } }';

let srv;
let team;
const clients = [];

before(async () => {
  srv = await startServer({
    users: ['alice', 'bob', 'carol', 'dave'],
    env: { PRESENCE_OFFLINE_GRACE: '500ms', PRESENCE_ACTIVITY_INTERVAL: '100ms' },
  });
  team = await makeTeam(srv, 'alice', 'Core', ['bob']);
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

/** A graphql-ws client of user: one browser tab. */
async function tab(user) {
  const client = createClient({
    url: srv.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { token: await srv.token(user) },
    retryAttempts: 0,
    lazy: false,
  });
  clients.push(client);
  await new Promise((resolve, reject) => {
    const off = client.on('connected', () => {
      off();
      resolve();
    });
    client.on('error', reject);
  });
  return client;
}

function subscribe(client, query, variables) {
  const q = eventQueue();
  client.subscribe({ query, variables }, q);
  return q;
}

const page = (p) => (r) => r.data?.userActivity?.presence?.currentPage === p || r.data?.teamUpdates?.presence?.currentPage === p;

test('userActivity follows a teammate: what they do, then offline after the grace', async () => {
  const alice = await tab('alice');
  const bob = subscribe(await tab('bob'), ACTIVITY, { u: 'alice' });
  // Live once bob sees one of alice's changes.
  await fireUntilEvent(bob, (i) => srv.gql('alice', UPDATE, { in: { currentPage: `/warm/${i}` } }), { every: 300 });
  await quietFor(bob, 300);

  const { updatePresence } = await srv.gql('alice', UPDATE, { in: { currentPage: '/board', status: 'AWAY' } });
  assert.deepEqual(updatePresence, { userId: 'alice', status: 'AWAY', currentPage: '/board' });
  const ev = (await takeWhere(bob, page('/board'), 5000, "alice's /board")).data.userActivity;
  assert.equal(ev.type, 'USER_ACTIVITY');
  assert.equal(ev.presence.status, 'AWAY');
  assert.ok(ev.cursor && ev.timestamp && ev.presence.lastSeen, describe(ev));

  await alice.dispose();
  const closed = Date.now();
  const off = await takeWhere(bob, (r) => r.data?.userActivity?.type === 'USER_OFFLINE', 5000, 'USER_OFFLINE');
  assert.ok(Date.now() - closed >= 450, `USER_OFFLINE ${Date.now() - closed} ms after the close, before the 500 ms grace`);
  assert.deepEqual(
    { ...off.data.userActivity.presence, lastSeen: undefined },
    { userId: 'alice', status: 'OFFLINE', lastSeen: undefined, currentPage: null, activeTask: null, activeProject: null },
  );
});

test('a stranger is refused as an unknown id, and learns nothing', async () => {
  const dave = await tab('dave');
  const errorOf = async (u) => {
    const q = subscribe(dave, ACTIVITY, { u });
    const end = await q.end(5000, `userActivity(${u}) to fail`);
    return end.error?.[0] ?? end.error;
  };
  const stranger = await errorOf('alice');
  const unknown = await errorOf('nobody-at-all');
  assert.equal(stranger.extensions?.code, 'NOT_FOUND', describe(stranger));
  assert.equal(stranger.message, unknown.message);
  const { body } = await srv.post(await srv.token('dave'), '{ user(id: "alice") { online presence { status } } }');
  assert.equal(body.errors?.[0]?.extensions?.code, 'NOT_FOUND', JSON.stringify(body));
  const tp = await srv.post(await srv.token('dave'), `{ teamPresence(teamId: "${team}") { userId } }`);
  assert.equal(tp.body.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(tp.body));
});

test('teamUpdates carries membership changes and members’ presence', async () => {
  const alice = await tab('alice');
  const bob = subscribe(await tab('bob'), TEAM, { t: team });
  await fireUntilEvent(bob, (i) => srv.gql('alice', UPDATE, { in: { currentPage: `/warm/${i}` } }), { every: 300 });
  await quietFor(bob, 300);

  await srv.gql('alice', 'mutation ($t: ID!) { addTeamMember(teamId: $t, userId: "carol") { id } }', { t: team });
  await srv.gql('carol', 'mutation ($t: ID!) { acceptInvitation(teamId: $t) { id } }', { t: team });
  const added = (await bob.take(5000, 'TEAM_MEMBER_ADDED')).data.teamUpdates;
  assert.equal(added.type, 'TEAM_MEMBER_ADDED');
  assert.equal(added.member.id, 'carol');
  assert.deepEqual(added.team.members.map((m) => m.id).sort(), ['alice', 'bob', 'carol']);
  assert.equal(added.presence.status, 'OFFLINE');

  const carol = await tab('carol');
  const online = (await bob.take(5000, "carol's USER_ONLINE")).data.teamUpdates;
  assert.equal(online.type, 'USER_ONLINE');
  assert.deepEqual(online.presence, { userId: 'carol', status: 'ONLINE', currentPage: null });
  assert.equal(online.team.id, team);
  assert.equal(online.member, null);

  await srv.gql('carol', 'mutation ($t: ID!) { removeTeamMember(teamId: $t, userId: "carol") { id } }', { t: team });
  const removed = (await bob.take(5000, 'TEAM_MEMBER_REMOVED')).data.teamUpdates;
  assert.equal(removed.type, 'TEAM_MEMBER_REMOVED');
  assert.equal(removed.member.id, 'carol');
  // Gone from the team: her presence no longer reaches it.
  await srv.gql('carol', UPDATE, { in: { currentPage: '/elsewhere' } });
  await carol.dispose();
  const late = await quietFor(bob, 900);
  assert.deepEqual(late, [], `bob still got ${describe(late)}`);
  await alice.dispose();
});
