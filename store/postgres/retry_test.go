package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// A unit that loses a deadlock runs again, and only its last attempt's
// entries are logged; both units commit.
func TestUpdateRetriesDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"})),
		createErr(s.CreateTask(ctx, store.Task{ID: "tsk_a", Title: "a", UserID: "alice"})),
		createErr(s.CreateTask(ctx, store.Task{ID: "tsk_b", Title: "b", UserID: "alice"})))
	var runs atomic.Int32
	holds := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	// Unit i updates its task, waits (first attempt only) until the other
	// holds its own, then updates the other's: a cycle.
	unit := func(i int) error {
		mine, theirs := []string{"tsk_a", "tsk_b"}[i], []string{"tsk_a", "tsk_b"}[1-i]
		return s.Update(ctx, func(tx store.Tx) error {
			runs.Add(1)
			if _, err := tx.UpdateTask(ctx, mine, store.TaskPatch{Title: ptr("x")}); err != nil {
				return err
			}
			closeOnce(holds[i])
			<-holds[1-i]
			if _, err := tx.UpdateTask(ctx, theirs, store.TaskPatch{Title: ptr("y")}); err != nil {
				return err
			}
			tx.Append(&store.LogEntry{Type: fmt.Sprint("unit", i)})
			return nil
		})
	}
	var wg sync.WaitGroup
	var errsOf [2]error
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); errsOf[i] = unit(i) }()
	}
	wg.Wait()
	if errsOf[0] != nil || errsOf[1] != nil {
		t.Fatalf("units: %v; %v", errsOf[0], errsOf[1])
	}
	// Once each, plus at least one rerun of the victim; a rerun may meet
	// the other unit again under load, but within the bound of attempts.
	if n := runs.Load(); n < 3 || n > 2*5 {
		t.Errorf("fn ran %d times for two units that deadlocked, want 3 to 10", n)
	}
	log, err := s.ReadLog(ctx, 0, 10)
	mustCreate(t, err)
	if len(log) != 2 || log[0].Type == log[1].Type {
		t.Errorf("log %+v, want one entry of each unit", log)
	}
	for _, id := range []string{"tsk_a", "tsk_b"} {
		tk, err := s.Task(ctx, id)
		mustCreate(t, err)
		if tk.Version != 3 {
			t.Errorf("%s at version %d, want 3 (two committed updates)", id, tk.Version)
		}
	}
}

// Retries are bounded, and only conflicts are retried.
func TestUpdateRetryBounds(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	tests := []struct {
		name string
		err  error
		runs int32
	}{
		{"deadlock every time", &pgconn.PgError{Code: codeDeadlockDetected}, maxAttempts},
		{"serialization failure every time", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: codeSerializationFailure}), maxAttempts},
		{"another database error", &pgconn.PgError{Code: "23505"}, 1},
		{"a coded error", errs.E(errs.Forbidden, "no"), 1},
		{"a plain error", errors.New("boom"), 1},
	}
	for _, tc := range tests {
		var runs atomic.Int32
		e := &store.LogEntry{Type: "never"}
		err := s.Update(ctx, func(tx store.Tx) error {
			runs.Add(1)
			tx.Append(e)
			return tc.err
		})
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: Update returned %v, want fn's error", tc.name, err)
		}
		if runs.Load() != tc.runs {
			t.Errorf("%s: fn ran %d times, want %d", tc.name, runs.Load(), tc.runs)
		}
		if e.Seq != 0 {
			t.Errorf("%s: entry numbered %d", tc.name, e.Seq)
		}
	}
	if head, err := s.LogHead(ctx); err != nil || head != 0 {
		t.Errorf("head %d (%v) after failed units, want 0", head, err)
	}
	// A retry pause ends with ctx.
	cctx, cancel := context.WithCancel(ctx)
	var runs atomic.Int32
	err := s.Update(cctx, func(store.Tx) error {
		runs.Add(1)
		cancel()
		return &pgconn.PgError{Code: codeDeadlockDetected}
	})
	if err == nil || runs.Load() != 1 {
		t.Errorf("cancelled during the pause: %v after %d runs, want the error after 1", err, runs.Load())
	}
}

// A unit that breaks the lock order (changes a task, then checks
// membership) deadlocks with DeleteProject run alone meanwhile: PostgreSQL
// aborts DeleteProject (it waited first), which is run again once the unit
// commits, so both succeed.
func TestDeleteProjectAloneRetriesDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"})),
		createErr(s.CreateProject(ctx, store.Project{ID: "prj_d", Name: "P", OwnerID: "alice"})),
		createErr(s.CreateTask(ctx, store.Task{ID: "tsk_d", Title: "t", ProjectID: "prj_d", UserID: "alice"})))
	changed, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var errUnit error
	go func() {
		defer close(done)
		errUnit = s.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.UpdateTask(ctx, "tsk_d", store.TaskPatch{Title: ptr("changed")}); err != nil {
				return err
			}
			closeOnce(changed)
			<-resume
			ok, err := tx.IsProjectMember(ctx, "prj_d", "alice")
			if err != nil || !ok {
				return fmt.Errorf("check after the change: %v, %w", ok, err)
			}
			tx.Append(&store.LogEntry{Type: "taskUpdated"})
			return nil
		})
	}()
	<-changed
	var deleted []store.Task
	var errDelete error
	deleteDone := make(chan struct{})
	go func() {
		defer close(deleteDone)
		_, deleted, errDelete = s.DeleteProject(ctx, "prj_d")
	}()
	if !untilBlocked(t, s, deleteDone) {
		t.Fatal("DeleteProject did not wait for the unit's task")
	}
	close(resume)
	<-done
	<-deleteDone
	if errUnit != nil || errDelete != nil {
		t.Fatalf("unit: %v; DeleteProject: %v", errUnit, errDelete)
	}
	if len(deleted) != 1 || deleted[0].Title != "changed" {
		t.Errorf("DeleteProject returned %+v, want the task as the unit left it", deleted)
	}
}
