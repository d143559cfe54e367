package proctest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/internal/testsvc"
	"github.com/taskpulse/taskpulse/store"
)

// Names of the server's environment the harness sets besides CONTRACT's.
const (
	// PrefixVar is the variable that starts every Redis key of an instance
	// (then ':'): instances of one test share it, tests do not.
	PrefixVar = "REDIS_PREFIX"
	// FailpointsVar arms the failpoints of a -tags failpoints build, e.g.
	// "after-commit=kill".
	FailpointsVar = "TASKPULSE_FAILPOINTS"
)

// Secret is the JWT_SECRET every instance of every test shares (each test
// has its own database, so its users are its own).
const Secret = "proctest-secret-not-for-production-0123456789"

// Options configure a Cluster.
type Options struct {
	// DatabaseURL is the DATABASE_URL; empty means a new PostgreSQL
	// database for the test (internal/pgtest).
	DatabaseURL string
	// RedisURL is the REDIS_URL; empty means the shared test Redis
	// (internal/redistest). NoRedis leaves REDIS_URL unset.
	RedisURL string
	NoRedis  bool
	// Prefix is REDIS_PREFIX (no braces: the server refuses a hash tag
	// there); empty means a new one for the test, whose keys are deleted
	// from the shared Redis when the test ends.
	Prefix string
	// Env is added to (and overrides) every instance's environment.
	Env map[string]string
}

// Cluster is the shared ground of one test's instances: a database, a
// Redis with a key prefix, the signing secret, and the environment every
// instance and CLI run gets.
type Cluster struct {
	t      testing.TB
	env    map[string]string
	dir    string // the test's temporary directory (audit logs)
	issuer *auth.Authenticator

	mu     sync.Mutex
	tokens map[string]string
	n      int
}

// New prepares a cluster for t: a database and a key prefix of its own.
// It starts no instance (Start does). Without a reachable PostgreSQL or
// Redis t is skipped (failed under CI=true).
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir(), tokens: map[string]string{}}
	c.env = map[string]string{
		"ADDR":       "127.0.0.1:0",
		"JWT_SECRET": Secret,
		// Tests make more calls, and refused ones, than a person; the
		// rate-limit test sets its own.
		"RATE_LIMIT_PER_MIN": "100000",
		"ABUSE_THRESHOLD":    "100000",
		"MAX_CONNS_PER_IP":   "10000",
		"DRAIN_TIMEOUT":      "500ms",
		"WS_PING_INTERVAL":   "5s",
		// Tests run side by side against one PostgreSQL (100 connections).
		"DATABASE_MAX_CONNS": "5",
	}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = pgtest.NewDatabase(t)
	}
	c.env["DATABASE_URL"] = opts.DatabaseURL
	if !opts.NoRedis {
		if opts.Prefix == "" {
			opts.Prefix = "tptest-" + testsvc.RandomHex(8)
		}
		if opts.RedisURL == "" {
			opts.RedisURL = redistest.URL()
			cleanPrefix(t, redistest.Client(t), opts.Prefix)
		}
		c.env["REDIS_URL"] = opts.RedisURL
		c.env[PrefixVar] = opts.Prefix
	}
	maps.Copy(c.env, opts.Env)
	issuer, err := auth.NewAuthenticator(auth.Options{Secret: []byte(Secret), Users: noUsers{}})
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	c.issuer = issuer
	return c
}

// cleanPrefix deletes, when t ends, every key the instances wrote to the
// shared Redis: the server puts prefix and ':' ahead of each key, or the
// prefix as a hash tag ("{prefix}:", the log's keys), and redis_rate puts
// its own prefix ahead of either.
func cleanPrefix(t testing.TB, rdb redis.UniversalClient, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, p := range []string{prefix + ":", "{" + prefix + "}:", redistest.RateLimitPrefix + prefix + ":", redistest.RateLimitPrefix + "{" + prefix + "}:"} {
			if err := redistest.DeletePrefix(ctx, rdb, p); err != nil {
				t.Errorf("proctest: delete keys %s*: %v", p, err)
			}
		}
	})
}

// Env returns the value every instance gets for the variable k.
func (c *Cluster) Env(k string) string { return c.env[k] }

// Start starts an instance named name with the cluster's environment
// plus extra, waits until it listens and is ready, and kills it when the
// test ends.
func (c *Cluster) Start(name string, extra map[string]string) *Instance {
	c.t.Helper()
	return c.StartWith(name, StartOptions{Env: extra})
}

// StartWith is Start with options.
func (c *Cluster) StartWith(name string, opts StartOptions) *Instance {
	c.t.Helper()
	vars := maps.Clone(c.env)
	c.mu.Lock()
	c.n++
	vars["AUDIT_LOG"] = filepath.Join(c.dir, fmt.Sprintf("audit-%d-%s.log", c.n, name))
	c.mu.Unlock()
	maps.Copy(vars, opts.Env)
	return startInstance(c.t, c, name, environ(vars), opts)
}

// Run runs a CLI command (`taskpulse <args>`) with the cluster's
// environment and returns its output and exit code.
func (c *Cluster) Run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(c.t), args...)
	vars := maps.Clone(c.env)
	vars["AUDIT_LOG"] = filepath.Join(c.dir, "audit-cli.log")
	cmd.Env = environ(vars)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.t.Fatalf("proctest: taskpulse %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// Users creates accounts with `taskpulse user add`; an id ending in "!"
// is an admin ("ops!" → ops). Names are the id capitalised.
func (c *Cluster) Users(ids ...string) {
	c.t.Helper()
	for _, id := range ids {
		args := []string{"user", "add"}
		if strings.HasSuffix(id, "!") {
			id = strings.TrimSuffix(id, "!")
			args = append(args, "--admin")
		}
		args = append(args, id, "--name", strings.ToUpper(id[:1])+id[1:])
		if out, errOut, code := c.Run(args...); code != 0 {
			c.t.Fatalf("proctest: taskpulse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// Token is a token for user signed with the cluster's secret, valid for
// an hour (made once per user and test).
func (c *Cluster) Token(user string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok, ok := c.tokens[user]; ok {
		return tok
	}
	tok, err := c.issuer.Issue(user, time.Hour, "")
	if err != nil {
		panic("proctest: signing a token: " + err.Error()) // cannot fail with a valid key
	}
	c.tokens[user] = tok
	return tok
}

// environ is vars as a process environment, with only the host's PATH,
// HOME and TMPDIR besides: a developer's own DATABASE_URL or REDIS_URL
// must not leak into an instance.
func environ(vars map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// noUsers satisfies auth.Options.Users for an Authenticator that only
// issues tokens (the instances verify them against their database).
type noUsers struct{}

func (noUsers) User(context.Context, string) (store.User, error) {
	return store.User{}, errors.New("proctest: the token issuer looks up no user")
}
