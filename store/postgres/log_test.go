package postgres

import (
	"context"
	"time"

	"testing"

	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/storetest"
)

// Two instances on one database number the log in commit order: the
// log_head row lock, not anything in a process, orders them.
func TestLogOrderAcrossInstances(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	storetest.LogOrder(t, openT(t, url), openT(t, url))
}

// The log, its head and the epoch are the database's: a reopen (or another
// instance) keeps them, a new database has its own epoch.
func TestLogSurvivesReopen(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	storetest.LogSurvivesReopen(t,
		func() (store.Store, error) { return Open(t.Context(), url, Options{}) },
		func(t *testing.T) store.Store { return newStore(t) })
}

// Only units of work that append wait for the log head: one without entries
// commits while another transaction holds the head's row lock, one with
// entries waits until it is released.
func TestOnlyAppendingUnitsWaitForTheHead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	holder, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `SELECT seq FROM log_head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err = s.Update(short, func(tx store.Tx) error {
		_, err := tx.CreateUser(short, store.User{ID: "alice", Name: "Alice"})
		return err
	})
	if err != nil {
		t.Fatalf("a unit without entries waited for the head: %v", err)
	}

	blocked, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	e := &store.LogEntry{Type: "t"}
	err = s.Update(blocked, func(tx store.Tx) error { tx.Append(e); return nil })
	if err == nil {
		t.Fatal("a unit with entries committed while the head was locked elsewhere")
	}
	if e.Seq != 0 {
		t.Errorf("a failed unit set Seq %d", e.Seq)
	}

	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { tx.Append(e); return nil }); err != nil || e.Seq != 1 {
		t.Errorf("after the head was released: seq %d, %v; want 1", e.Seq, err)
	}
}
