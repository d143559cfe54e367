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
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &store.LogEntry{Type: "t", Rooms: []string{"r"}, Data: []byte(`{}`)}
	if err := s.Update(ctx, func(tx store.Tx) error { tx.Append(e); return nil }); err != nil {
		t.Fatal(err)
	}
	epoch, err := s.LogEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, url)
	if got, err := s.LogEpoch(ctx); err != nil || got != epoch {
		t.Errorf("epoch after reopen: %q, %v; want %q", got, err, epoch)
	}
	if head, err := s.LogHead(ctx); err != nil || head != 1 {
		t.Errorf("head after reopen: %d, %v; want 1", head, err)
	}
	if got, err := s.ReadLog(ctx, 0, 10); err != nil || len(got) != 1 || got[0].Seq != 1 || got[0].Type != "t" {
		t.Errorf("log after reopen: %+v, %v", got, err)
	}
	other, err := newStore(t).LogEpoch(ctx)
	if err != nil || other == epoch {
		t.Errorf("epoch of a new database: %q, %v; want one other than %q", other, err, epoch)
	}
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
