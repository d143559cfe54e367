// Test harness: runs the real taskpulse binary for one test file.
//
// It builds nothing. The binary is $TASKPULSE_BIN or ../../bin/taskpulse
// (relative to this directory; `go build -o bin/taskpulse .` in the repo
// root makes it). Each server gets its own temp dir, SQLite file and random
// JWT secret; users are made with `taskpulse user add` and tokens with
// `taskpulse token`, exactly as an operator would. Every wait has a timeout.
//
// With `tls: true` the server serves HTTPS and WSS with a certificate made
// for the test by `go run ./internal/testcert/cmd/testcert` (a test CA and a
// server certificate for 127.0.0.1 and localhost); the server object then
// carries the CA to trust and can renew the certificate in place.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, access, readFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');

export const BIN = process.env.TASKPULSE_BIN
  ? resolve(process.env.TASKPULSE_BIN)
  : resolve(here, '../../bin/taskpulse');

/** Names for the users a test file may ask for by id. */
const NAMES = { alice: 'Alice', bob: 'Bob', carol: 'Carol', dave: 'Dave', erin: 'Erin' };

/** Rejects with a message naming what was awaited if p takes longer than ms. */
export function withTimeout(p, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function run(args, env, timeoutMs = 15000, file = BIN, cwd = undefined) {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { env, cwd, timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const name = file === BIN ? 'taskpulse' : file;
        reject(new Error(`${name} ${args.join(' ')} failed (${err.code ?? err.signal}): ${stderr.trim()}`));
        return;
      }
      resolvePromise(stdout);
    });
  });
}

/**
 * Writes (or, run again on the same dir, renews in place) a test
 * certificate: dir/ca.pem, dir/cert.pem, dir/key.pem. Resolves to the new
 * certificate's serial number (upper-case hex).
 */
export async function makeTestCert(dir) {
  const out = await run(['run', './internal/testcert/cmd/testcert', '-dir', dir], process.env, 120000, 'go', repoRoot);
  return normSerial(out.trim());
}

/** A certificate serial number in one spelling: upper-case hex, no leading zeros. */
export function normSerial(s) {
  return s.toUpperCase().replace(/^0+/, '');
}

/**
 * POST over HTTPS trusting ca (fetch cannot be given a CA without undici's
 * Agent, which is not installed). Resolves to {status, text}.
 */
function postTLS(url, ca, headers, body) {
  return new Promise((resolveRes, reject) => {
    const req = httpsRequest(url, { method: 'POST', headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolveRes({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Throws a clear error when the binary has not been built. */
export async function requireBinary() {
  try {
    await access(BIN, fsConstants.X_OK);
  } catch {
    throw new Error(`no taskpulse binary at ${BIN}: run \`go build -o bin/taskpulse .\` in the repo root or set TASKPULSE_BIN`);
  }
}

/**
 * Starts `taskpulse serve` on 127.0.0.1:0 with fresh state.
 *
 * @param {object} [opts]
 * @param {string[]} [opts.users] user ids to create before serving
 * @param {Record<string,string>} [opts.env] extra environment
 * @param {boolean} [opts.tls] serve HTTPS/WSS with a test certificate
 */
export async function startServer({ users = ['alice', 'bob', 'carol', 'dave'], env: extra = {}, tls = false } = {}) {
  await requireBinary();
  const dir = await mkdtemp(join(tmpdir(), 'taskpulse-js-'));
  const certDir = join(dir, 'tls');
  let ca = null;
  let serial = null;
  if (tls) {
    serial = await makeTestCert(certDir);
    ca = await readFile(join(certDir, 'ca.pem'), 'utf8');
    extra = { TLS_CERT_FILE: join(certDir, 'cert.pem'), TLS_KEY_FILE: join(certDir, 'key.pem'), ...extra };
  }
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    TMPDIR: tmpdir(),
    DATABASE_URL: `sqlite:${join(dir, 't.db')}`,
    JWT_SECRET: randomBytes(32).toString('hex'),
    ADDR: '127.0.0.1:0',
    // Tests make more calls per minute than a person, and more refused
    // ones; limits have their own tests (limits.test.mjs, and in Go).
    RATE_LIMIT_PER_MIN: '100000',
    ABUSE_THRESHOLD: '100000',
    // Shutdown with open sockets waits at most this long.
    DRAIN_TIMEOUT: '1s',
    // Audit records in a file, so stderr keeps the process log.
    AUDIT_LOG: join(dir, 'audit.log'),
    ...extra,
  };
  for (const id of users) {
    await run(['user', 'add', id, '--name', NAMES[id] ?? id], env);
  }

  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    // Keep the tail only: enough to explain a failure.
    stderr = (stderr + chunk).slice(-64 * 1024);
  });
  const exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
  });

  const url = await withTimeout(
    new Promise((resolveURL, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const m = /^taskpulse listening on (https?:\/\/\S+)$/m.exec(out);
        if (m) resolveURL(m[1].replace(/\/$/, ''));
      });
      exited.then(({ code, signal }) =>
        reject(new Error(`taskpulse serve exited (${code ?? signal}) before listening:\n${stderr}`)),
      );
      child.once('error', reject);
    }),
    15000,
    'the "taskpulse listening on" line',
  ).catch(async (err) => {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  });

  const tokens = new Map();
  // The WebSocket class to give graphql-ws (webSocketImpl): ws's, trusting
  // the test CA when the server speaks TLS.
  const WebSocketImpl = ca
    ? class extends WebSocket {
        constructor(address, protocols, options) {
          super(address, protocols, { ...options, ca });
        }
      }
    : WebSocket;
  const server = {
    url,
    httpURL: `${url}/graphql`,
    wsURL: `${url.replace(/^http/, 'ws')}/graphql`,
    dir,
    env,
    /** With tls: the test CA's PEM (what clients trust), else null. */
    ca,
    /** With tls: the serial (hex) of the certificate the files hold now. */
    get serial() {
      return serial;
    },
    WebSocket: WebSocketImpl,
    /** With tls: replaces cert.pem and key.pem with a new certificate from the same CA; its serial. */
    async renewCert() {
      if (!ca) throw new Error('renewCert needs startServer({ tls: true })');
      serial = await makeTestCert(certDir);
      return serial;
    },
    get stderr() {
      return stderr;
    },
    /** A fresh JWT for the user from `taskpulse token` (cached per id and ttl). */
    async token(id, ttl) {
      const key = `${id}/${ttl ?? ''}`;
      if (!tokens.has(key)) {
        const args = ['token', id, ...(ttl ? ['--ttl', ttl] : [])];
        const out = (await run(args, env)).trim();
        if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(out)) {
          throw new Error(`taskpulse ${args.join(' ')} printed ${JSON.stringify(out)}, not a JWT alone`);
        }
        tokens.set(key, out);
      }
      return tokens.get(key);
    },
    /** POST /graphql as a user (a token string, or null for none). Returns {status, body}. */
    async post(token, query, variables = {}) {
      const headers = { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json' };
      if (token) headers.Authorization = `Bearer ${token}`;
      const payload = JSON.stringify({ query, variables });
      const res = await withTimeout(
        ca
          ? postTLS(`${url}/graphql`, ca, headers, payload)
          : fetch(`${url}/graphql`, { method: 'POST', headers, body: payload }).then(async (r) => ({
              status: r.status,
              text: await r.text(),
            })),
        10000,
        'POST /graphql',
      );
      const text = res.text;
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`POST /graphql answered ${res.status} with non-JSON: ${text.slice(0, 300)}`);
      }
      return { status: res.status, body };
    },
    /** Like post, as user id, and fails on any GraphQL error; returns data. */
    async gql(userId, query, variables = {}) {
      const { status, body } = await server.post(await server.token(userId), query, variables);
      if (body.errors?.length || status !== 200) {
        throw new Error(`${userId}: ${query.trim().split('\n')[0]} → ${status} ${JSON.stringify(body)}`);
      }
      return body.data;
    },
    /** SIGTERM, then the exit status ({code, signal}); SIGKILL after 15 s. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let result;
      try {
        result = await withTimeout(exited, 15000, 'taskpulse to exit after SIGTERM');
      } catch (err) {
        child.kill('SIGKILL');
        result = await exited;
        result.timedOut = true;
      }
      await rm(dir, { recursive: true, force: true });
      return result;
    },
  };
  return server;
}

/**
 * Makes a team created by creator whose members joined with consent: the
 * creator invites each (addTeamMember), each accepts. Returns its id.
 */
export async function makeTeam(server, creator, name, members = []) {
  const { createTeam } = await server.gql(creator, 'mutation ($name: String!) { createTeam(input: { name: $name }) { id } }', {
    name,
  });
  for (const m of members) {
    await server.gql(creator, 'mutation ($t: ID!, $u: ID!) { addTeamMember(teamId: $t, userId: $u) { id } }', {
      t: createTeam.id,
      u: m,
    });
    await server.gql(m, 'mutation ($t: ID!) { acceptInvitation(teamId: $t) { id } }', { t: createTeam.id });
  }
  return createTeam.id;
}

/**
 * Makes a project owned by owner with the given members; returns its id. An
 * owner adds only teammates, so the members first join a team of the owner's
 * (makeTeam).
 */
export async function makeProject(server, owner, name, members = []) {
  if (members.length) await makeTeam(server, owner, `${name} team`, members);
  const { createProject } = await server.gql(
    owner,
    'mutation ($name: String!) { createProject(input: { name: $name }) { id } }',
    { name },
  );
  for (const m of members) {
    await server.gql(owner, 'mutation ($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u) { id } }', {
      p: createProject.id,
      u: m,
    });
  }
  return createProject.id;
}

/** Creates a task as user; returns the task {id, title, ...}. */
export async function createTask(server, user, input) {
  const { createTask: task } = await server.gql(
    user,
    'mutation ($in: CreateTaskInput!) { createTask(input: $in) { id title status projectId userId assignedTo } }',
    { in: input },
  );
  return task;
}

/**
 * A queue over callbacks (next/error/complete) so a test can await the next
 * item with a timeout, or assert that nothing arrives for a while.
 */
export function eventQueue() {
  const items = [];
  const waiters = [];
  let ended = null; // { error } or { complete: true }
  function wake() {
    while (waiters.length && (items.length || ended)) {
      const w = waiters.shift();
      if (items.length) w.resolve(items.shift());
      else if (ended.error !== undefined) w.reject(ended.error);
      else w.reject(new Error('the subscription completed'));
    }
  }
  return {
    items,
    get ended() {
      return ended;
    },
    next(v) {
      items.push(v);
      wake();
    },
    error(e) {
      ended = { error: e };
      wake();
    },
    complete() {
      ended = { complete: true };
      wake();
    },
    /** The next item, or a rejection after ms. */
    take(ms, what = 'an event') {
      return new Promise((resolveItem, reject) => {
        const waiter = {
          resolve: (v) => {
            clearTimeout(timer);
            resolveItem(v);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        // A timed-out waiter leaves the line, so it cannot swallow a later item.
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
        }, ms);
        waiters.push(waiter);
        wake();
      });
    },
    /** Resolves with how the subscription ended ({error} or {complete}), or rejects after ms. */
    async end(ms, what = 'the subscription to end') {
      const deadline = Date.now() + ms;
      while (!ended) {
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(10);
      }
      return ended;
    },
  };
}

/**
 * Fires an action (e.g. a mutation) every `every` ms until the queue gets its
 * first item, which proves the subscription is live on the server; there is
 * no protocol message that says so. Returns {event, fired} where fired lists
 * what each action returned.
 */
export async function fireUntilEvent(queue, fire, { every = 250, timeout = 8000, what = 'the first event' } = {}) {
  const fired = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    fired.push(await fire(fired.length));
    try {
      const event = await queue.take(Math.min(every, Math.max(1, deadline - Date.now())), what);
      return { event, fired };
    } catch (err) {
      if (queue.ended) throw new Error(`subscription ended before ${what}: ${describe(queue.ended)}`);
      if (Date.now() >= deadline) throw err;
    }
  }
}

/**
 * The next item that satisfies pred, skipping others (late warm-up events
 * from fireUntilEvent, say); rejects after ms in all.
 */
export async function takeWhere(queue, pred, ms, what = 'a matching event') {
  const deadline = Date.now() + ms;
  const skipped = [];
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; skipped ${describe(skipped)}`);
    const item = await queue.take(left, what).catch((err) => {
      throw new Error(`${err.message}; skipped ${describe(skipped)}`);
    });
    if (pred(item)) return item;
    skipped.push(item);
  }
}

/** Drains what arrived in the next ms; the array of items. */
export async function quietFor(queue, ms) {
  await sleep(ms);
  return queue.items.splice(0);
}

export function describe(v) {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (v && typeof v === 'object' && 'code' in v && 'reason' in v) return `close ${v.code} ${v.reason}`;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

export { sleep };
