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
	"github.com/taskpulse/taskpulse/internal/testsvc"
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
		testsvc.Unreachable(t, "pgtest", "PostgreSQL", AdminURL(), "set "+EnvVar+" to a server where this role may CREATE DATABASE", err)
		return ""
	}
	defer func() { _ = conn.Close(context.Background()) }()

	name := "tp_" + testsvc.RandomHex(8)
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
