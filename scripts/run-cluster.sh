#!/usr/bin/env bash
# make run-cluster: two taskpulse instances (127.0.0.1:8081 and :8082) that
# share this machine's PostgreSQL and Redis, behind HAProxy on
# 127.0.0.1:8080 (deploy/haproxy.cfg). Prints how to connect; Ctrl-C stops
# everything. See README.md, "Production".
#
# Environment (defaults in brackets):
#   DATABASE_URL  [postgres://postgres@127.0.0.1:5432/taskpulse_cluster?sslmode=disable]
#                 created if missing
#   REDIS_URL     [redis://127.0.0.1:6379/0]
#   REDIS_PREFIX  [taskpulse-cluster]  keys of this cluster start with it
#   BIN           [bin/taskpulse]      built if missing
# Any other variable of the README (JWT_SECRET, RATE_LIMIT_PER_MIN, …) is
# passed to both instances.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/taskpulse_cluster?sslmode=disable}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export REDIS_PREFIX="${REDIS_PREFIX:-taskpulse-cluster}"
# The instances see HAProxy's address: its X-Forwarded-For names the client.
export TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1}"
export DRAIN_TIMEOUT="${DRAIN_TIMEOUT:-2s}"
BIN="${BIN:-bin/taskpulse}"
LB=127.0.0.1:8080 # as deploy/haproxy.cfg binds it
INSTANCES=(a=127.0.0.1:8081 b=127.0.0.1:8082)

say() { printf '%s\n' "$*"; }
die() { printf 'run-cluster: %s\n' "$*" >&2; exit 1; }

# ---- the database: created if missing ----
case "$DATABASE_URL" in
postgres://* | postgresql://*)
  command -v psql >/dev/null || die "psql is needed to create the database (Debian: postgresql-client)"
  url="${DATABASE_URL%%\?*}"
  query=""
  [ "$url" != "$DATABASE_URL" ] && query="?${DATABASE_URL#*\?}"
  db="${url##*/}"
  [[ "$db" =~ ^[A-Za-z0-9_]+$ ]] || die "database name '$db' in DATABASE_URL: use letters, digits and _"
  admin="${url%/*}/postgres${query}"
  if ! psql "$admin" -tAc "SELECT 1" >/dev/null 2>&1; then
    die "PostgreSQL does not answer at ${url%/*} (start it, or set DATABASE_URL)"
  fi
  if [ "$(psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
    psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null
    say "created database $db"
  fi
  ;;
*) die "DATABASE_URL must be postgres://… here: the instances share one database" ;;
esac

# ---- Redis ----
case "$REDIS_URL" in
redis://* | rediss://*)
  if command -v redis-cli >/dev/null && ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
    die "Redis does not answer at $REDIS_URL (start it, or set REDIS_URL)"
  fi
  ;;
esac

# ---- the load balancer and the binary ----
bash scripts/install-lb.sh >/dev/null
haproxy -c -q -f deploy/haproxy.cfg || die "deploy/haproxy.cfg does not check"
if [ ! -x "$BIN" ]; then
  go build -o "$BIN" .
fi

run="$(mktemp -d "${TMPDIR:-/tmp}/taskpulse-cluster.XXXXXX")"
pids=()
names=()
stop() {
  trap - INT TERM EXIT
  if [ "${#pids[@]}" -gt 0 ]; then
    say ""
    say "stopping (instances drain their sockets for up to $DRAIN_TIMEOUT)…"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  say "stopped; logs in $run"
}
trap stop EXIT
trap 'exit 130' INT TERM

# ready ADDR PID NAME: waits for ADDR's /readyz, or for PID to die.
ready() {
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://$1/readyz" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$run/$3.log" >&2; die "$3 exited (log: $run/$3.log)"; }
    sleep 0.1
  done
  tail -n 20 "$run/$3.log" >&2
  die "$3 not ready at http://$1/readyz within 15 s (log: $run/$3.log)"
}

for inst in "${INSTANCES[@]}"; do
  name="${inst%%=*}"
  addr="${inst#*=}"
  args=(serve)
  # The first seeds demo data into an empty database (one seeder: no race).
  [ "$name" = a ] && args+=(--demo)
  ADDR="$addr" "$BIN" "${args[@]}" >"$run/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
  ready "$addr" "$!" "$name"
done
haproxy -f deploy/haproxy.cfg -db >"$run/haproxy.log" 2>&1 &
pids+=($!)
names+=(haproxy)
ready "$LB" "$!" haproxy

token="$("$BIN" token alice --ttl 8h 2>/dev/null || true)"
say ""
say "taskpulse: 2 instances behind HAProxy"
say "  connect to      http://$LB/  (playground; /graphql for HTTP, WebSocket and SSE)"
say "  instances       http://${INSTANCES[0]#*=}  http://${INSTANCES[1]#*=}  (each: /readyz, /metrics)"
say "  HAProxy stats   http://127.0.0.1:8404/"
say "  database        $(sed -E 's#//([^:/@]*):[^@/]*@#//\1:xxxxx@#' <<<"$DATABASE_URL")"
say "  redis           $(sed -E 's#//([^:/@]*):[^@/]*@#//\1:xxxxx@#' <<<"$REDIS_URL")  (keys: $REDIS_PREFIX:…)"
if [ -n "$token" ]; then
  say "  token (alice)   export TOKEN=$token"
  say ""
  say "  try: curl -s http://$LB/graphql -H 'Content-Type: application/json' \\"
  say "         -H \"Authorization: Bearer \$TOKEN\" -d '{\"query\":\"{ me { id name } }\"}'"
  say "  a token for another user: DATABASE_URL='$DATABASE_URL' $BIN token <userID>"
fi
say "  logs            $run/{a,b,haproxy}.log"
say ""
say "Ctrl-C stops everything."

# Run until Ctrl-C, or until one of them exits (then stop the rest).
set +e
wait -n "${pids[@]}"
code=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    say "run-cluster: ${names[$i]} exited ($code); see $run/${names[$i]}.log" >&2
  fi
done
exit 1
