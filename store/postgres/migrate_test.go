package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/taskpulse/taskpulse/store/migrations"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskpulse/taskpulse/internal/pgtest"
)

// migrationRows returns the versions recorded in schema_migrations with
// their application times.
func migrationRows(t *testing.T, q querier) map[int]time.Time {
	t.Helper()
	rows, err := q.Query(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		got[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func knownVersions(t *testing.T) int {
	t.Helper()
	ms, err := migrations.Load(migrationFiles, "postgres")
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	return len(ms)
}

// rawPool connects to url without migrating anything.
func rawPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrationsApplyOnceAndReopenIsIdempotent(t *testing.T) {
	t.Parallel()
	known := knownVersions(t)
	url := pgtest.NewDatabase(t)
	s, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := migrationRows(t, s.pool)
	if len(first) != known {
		t.Fatalf("recorded versions %v, want 1..%d", first, known)
	}
	for v := 1; v <= known; v++ {
		if _, ok := first[v]; !ok {
			t.Errorf("version %d not recorded", v)
		}
	}
	var tables int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = ANY ($1)`,
		[]string{"users", "teams", "team_members", "invitations", "projects", "project_members", "tasks", "notifications", "settings"}).
		Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 9 {
		t.Errorf("%d of the 9 domain tables exist", tables)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s = openT(t, url)
		again := migrationRows(t, s.pool)
		if len(again) != len(first) {
			t.Errorf("after reopen: versions %v, want %v", again, first)
		}
		for v, at := range first {
			if !again[v].Equal(at) {
				t.Errorf("version %d re-applied on reopen (applied_at %v, then %v)", v, at, again[v])
			}
		}
	}
}

// Instances started together on a fresh database migrate it once: the
// advisory lock makes them take turns, and each finds what the previous
// one applied.
func TestConcurrentOpenOnFreshDatabase(t *testing.T) {
	t.Parallel()
	known := knownVersions(t)
	url := pgtest.NewDatabase(t)
	const instances = 4
	stores := make([]*Store, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(context.Background(), url, Options{})
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("instance %d: Open: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	if t.Failed() {
		return
	}
	if got := migrationRows(t, stores[0].pool); len(got) != known {
		t.Errorf("recorded versions %v, want 1..%d once each", got, known)
	}
	// Every instance works on the one schema.
	for i, s := range stores {
		if _, err := s.SetSettingIfAbsent(t.Context(), "k", fmt.Sprint(i)); err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	known := knownVersions(t)
	url := pgtest.NewDatabase(t)
	s := openT(t, url)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, known+1); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(context.Background(), url, Options{})
	if err == nil {
		_ = s2.Close()
		t.Fatal("Open of a database from a newer build succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("error %v is not ErrSchemaTooNew", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint("version ", known+1)) ||
		!strings.Contains(msg, fmt.Sprint("up to ", known)) {
		t.Errorf("error %q does not say which versions", msg)
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	pool := rawPool(t, pgtest.NewDatabase(t))
	ctx := t.Context()
	good := &fstest.MapFile{Data: []byte(`CREATE TABLE a (x INTEGER);`)}
	bad := fstest.MapFS{
		"migrations/0001_a.sql": good,
		// The first statement succeeds, the second fails: the first must
		// not survive.
		"migrations/0002_b.sql": {Data: []byte(`CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);`)},
	}
	err := migrate(ctx, pool, bad)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("migrate: got %v, want an error naming 0002_b.sql", err)
	}
	if got := migrationRows(t, pool); len(got) != 1 {
		t.Errorf("versions after a failed migration: %v, want only 1", got)
	}
	var b bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('b') IS NOT NULL`).Scan(&b); err != nil {
		t.Fatal(err)
	}
	if b {
		t.Errorf("table b of the failed migration exists")
	}

	fixed := fstest.MapFS{
		"migrations/0001_a.sql": good,
		"migrations/0002_b.sql": {Data: []byte(`CREATE TABLE b (x INTEGER);`)},
	}
	if err := migrate(ctx, pool, fixed); err != nil {
		t.Fatalf("migrate after the fix: %v", err)
	}
	if got := migrationRows(t, pool); len(got) != 2 {
		t.Errorf("versions after the fix: %v, want 1 and 2", got)
	}
}
