package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/taskpulse/taskpulse/store/migrations"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// migrationRows returns the versions recorded in schema_migrations with
// their application times.
func migrationRows(t *testing.T, db *sql.DB) map[int]int64 {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]int64{}
	for rows.Next() {
		var v int
		var at int64
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
	ms, err := migrations.Load(migrationFiles, "sqlite")
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	return len(ms)
}

func TestMigrationsApplyOnceAndReopenIsIdempotent(t *testing.T) {
	known := knownVersions(t)
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	first := migrationRows(t, s.w)
	if len(first) != known {
		t.Fatalf("recorded versions %v, want 1..%d", first, known)
	}
	for v := 1; v <= known; v++ {
		if _, ok := first[v]; !ok {
			t.Errorf("version %d not recorded", v)
		}
	}
	var tables int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN
		('users', 'teams', 'team_members', 'projects', 'project_members', 'tasks', 'notifications', 'settings')`).
		Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 8 {
		t.Errorf("%d of the 8 domain tables exist", tables)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s = openT(t, path)
		again := migrationRows(t, s.w)
		if len(again) != len(first) {
			t.Errorf("after reopen: versions %v, want %v", again, first)
		}
		for v, at := range first {
			if again[v] != at {
				t.Errorf("version %d re-applied on reopen (applied_at %d, then %d)", v, at, again[v])
			}
		}
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	known := knownVersions(t)
	path := filepath.Join(t.TempDir(), "future.db")
	s := openT(t, path)
	if _, err := s.w.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, known+1); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(context.Background(), path)
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
	s, err := openPools(context.Background(), filepath.Join(t.TempDir(), "fail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	good := &fstest.MapFile{Data: []byte(`CREATE TABLE a (x INTEGER);`)}
	bad := fstest.MapFS{
		"migrations/0001_a.sql": good,
		// The first statement succeeds, the second fails: the first must
		// not survive.
		"migrations/0002_b.sql": {Data: []byte(`CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);`)},
	}
	err = migrate(ctx, s.w, bad)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("migrate: got %v, want an error naming 0002_b.sql", err)
	}
	if got := migrationRows(t, s.w); len(got) != 1 {
		t.Errorf("versions after a failed migration: %v, want only 1", got)
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("table b of the failed migration exists")
	}

	fixed := fstest.MapFS{
		"migrations/0001_a.sql": good,
		"migrations/0002_b.sql": {Data: []byte(`CREATE TABLE b (x INTEGER);`)},
	}
	if err := migrate(ctx, s.w, fixed); err != nil {
		t.Fatalf("migrate after the fix: %v", err)
	}
	if got := migrationRows(t, s.w); len(got) != 2 {
		t.Errorf("versions after the fix: %v, want 1 and 2", got)
	}
}
