// graphql-http's GraphQL-over-HTTP audits against POST /graphql, with a
// valid Authorization header on every request: every MUST audit passes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';
import { startServer, withTimeout } from './harness.mjs';

let srv;
let token;

before(async () => {
  srv = await startServer({ users: ['alice'] });
  token = await srv.token('alice');
});

after(async () => {
  const { code, signal } = await srv.stop();
  assert.equal(code, 0, `taskpulse exited with ${code ?? signal} after SIGTERM`);
});

/** fetch with the user's token added, as an authenticated app sends it. */
function authedFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

test('GraphQL-over-HTTP audits (graphql-http serverAudits)', async (t) => {
  const audits = serverAudits({ url: () => srv.httpURL, fetchFn: authedFetch });
  assert.ok(audits.length > 0, 'graphql-http returned no audits');
  const counts = { ok: 0, warn: 0, notice: 0, error: 0 };
  const problems = [];
  for (const audit of audits) {
    const result = await withTimeout(audit.fn(), 10000, audit.name);
    counts[result.status]++;
    if (result.status !== 'ok') {
      let body = '';
      try {
        body = (await result.response.text()).slice(0, 200);
      } catch {
        /* body already read by the audit */
      }
      problems.push(`${result.status.toUpperCase()} ${audit.id} ${audit.name}: ${result.reason} ${body}`);
    }
    if (audit.name.startsWith('MUST')) {
      await t.test(audit.name, () => {
        assert.equal(result.status, 'ok', `${audit.id}: ${result.reason}`);
      });
    }
  }
  const must = audits.filter((a) => a.name.startsWith('MUST')).length;
  t.diagnostic(
    `${audits.length} audits (${must} MUST): ok ${counts.ok}, warn ${counts.warn}, notice ${counts.notice}, error ${counts.error}`,
  );
  for (const p of problems) t.diagnostic(p);
  console.log(`graphql-http audits: ok ${counts.ok}, warn ${counts.warn}, notice ${counts.notice}, error ${counts.error}`);
});

// Nothing is parsed, validated or cached for a caller without a token: the
// request is refused 401 as a whole, GET and introspection included, and
// the same document with a token is answered.
for (const { name, request } of [
  { name: 'POST a query', request: { method: 'POST', body: JSON.stringify({ query: '{ me { id } }' }) } },
  { name: 'POST a mutation', request: { method: 'POST', body: JSON.stringify({ query: 'mutation { createTeam(input: {name: "x"}) { id } }' }) } },
  { name: 'POST introspection', request: { method: 'POST', body: JSON.stringify({ query: '{ __schema { queryType { name } } }' }) } },
  { name: 'POST a document that does not parse', request: { method: 'POST', body: JSON.stringify({ query: '{ me {' }) } },
  { name: 'GET a query', request: { method: 'GET', query: '?query=' + encodeURIComponent('{ me { id } }') } },
]) {
  test(`${name} without a token is refused 401 UNAUTHENTICATED`, async () => {
    const { method, body, query = '' } = request;
    const headers = { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json' };
    const res = await withTimeout(fetch(srv.httpURL + query, { method, headers, body }), 10000, name);
    const answer = await res.json();
    assert.equal(res.status, 401, JSON.stringify(answer));
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.deepEqual(answer.errors?.map((e) => e.extensions?.code), ['UNAUTHENTICATED'], JSON.stringify(answer));
    assert.equal(answer.data, undefined, 'no data for an anonymous caller');

    const authed = await withTimeout(authedFetch(srv.httpURL + query, { method, headers, body }), 10000, `${name} with a token`);
    assert.notEqual(authed.status, 401, `with a token: ${await authed.text()}`);
  });
}
