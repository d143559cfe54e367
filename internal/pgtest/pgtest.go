// Package pgtest owns the PostgreSQL side of taskpulse's tests: it gives
// each test a database of its own, created on the server named by
// TASKPULSE_TEST_POSTGRES and dropped when the test ends, so tests run in
// parallel against one server and leave nothing behind.
//
// Without a reachable server the test is skipped, with the reason; under
// CI=true it fails instead, because CI must run these tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the admin connection: a URL of a database the tests may
// connect to, as a role that may create databases.
const EnvVar = "TASKPULSE_TEST_POSTGRES"

// DefaultURL is the admin connection when EnvVar is unset: the local
// server, trust authentication, database "test".
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// timeout bounds each administrative step (connect, create, drop).
const timeout = 30 * time.Second

// AdminURL returns the admin connection URL.
func AdminURL() string {
	if u := os.Getenv(EnvVar); u != "" {
		return u
	}
	return DefaultURL
}

// NewDatabase creates an empty database for t, named tp_<random>, and
// returns its URL (the admin URL with the database replaced). The database
// is dropped, with any connections still open to it, when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL: %v", EnvVar, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unreachable(t, err)
		return ""
	}
	defer func() { _ = conn.Close(context.Background()) }()

	name := "tp_" + randomHex(8)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// unreachable skips t, or fails it under CI.
func unreachable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("PostgreSQL unreachable at %s (set %s to a server where this role may CREATE DATABASE): %v",
		redact(AdminURL()), EnvVar, err)
	if os.Getenv("CI") == "true" {
		t.Fatal("pgtest: CI=true, so PostgreSQL tests must run: " + msg)
	}
	t.Skip("pgtest: " + msg)
}

// redact hides a password in u, for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(" + EnvVar + ", not a URL)"
	}
	return p.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
