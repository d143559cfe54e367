package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// These tests interleave units of work deterministically: a unit pauses
// inside fn, holding what it has locked, while another runs until it
// either finishes or waits on a lock in the database (seen in
// pg_stat_activity), and only then does the first go on.

// untilBlocked waits until a session of s's database waits on a lock, or
// done is closed; it reports which.
func untilBlocked(t *testing.T, s *Store, done <-chan struct{}) (blocked bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		var n int
		if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("the second unit neither finished nor waited on a lock within 10s")
	return false
}

// mustCreate runs the setup calls, failing t on the first error.
func mustCreate(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func createErr[T any](_ T, err error) error { return err }

// entrySeq finds the seq of the entry of type typ whose data is data; 0 if
// none.
func entrySeq(t *testing.T, s *Store, typ, data string) int64 {
	t.Helper()
	var seq int64
	err := s.pool.QueryRow(t.Context(), `SELECT coalesce(max(seq), 0) FROM event_log WHERE type = $1 AND data = $2`,
		typ, []byte(data)).Scan(&seq)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// The race: unit A checks that u is a member of p, then (after a
// pause) changes a task of p and logs it; unit B removes u from p and logs
// it. Whatever the interleaving, A's task entry never follows B's removal
// entry with A's check having passed: a member removed before a task
// changes never receives that change. Even rounds pause A after its check
// and run B meanwhile (B must wait for A); odd rounds pause B after its
// removal, before it commits, and run A meanwhile (A's check must wait for
// B and see u gone).
func TestMembershipRemovalRacesTaskChange(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: "owner", Name: "Owner"})),
		createErr(s.CreateProject(ctx, store.Project{ID: "prj_race", Name: "P", OwnerID: "owner"})))
	const rounds = 30
	for round := range rounds {
		u := fmt.Sprintf("u%02d", round)
		tk := fmt.Sprintf("tsk_%02d", round)
		mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: u, Name: u})),
			createErr(s.AddProjectMember(ctx, "prj_race", u)),
			createErr(s.CreateTask(ctx, store.Task{ID: tk, Title: "t", ProjectID: "prj_race", UserID: "owner"})))
		var (
			checked, removed = make(chan struct{}), make(chan struct{})
			resumeA, resumeB = make(chan struct{}), make(chan struct{})
			doneA, doneB     = make(chan struct{}), make(chan struct{})
			sawMember        atomic.Bool
			runsA, runsB     atomic.Int32
			errA, errB       error
		)
		aFirst := round%2 == 0
		if aFirst {
			close(resumeB)
		} else {
			close(resumeA)
		}
		unitA := func() {
			defer close(doneA)
			errA = s.Update(ctx, func(tx store.Tx) error {
				runsA.Add(1)
				ok, err := tx.IsProjectMember(ctx, "prj_race", u)
				if err != nil {
					return err
				}
				sawMember.Store(ok)
				closeOnce(checked)
				<-resumeA
				if !ok {
					return nil // refused: nothing changes, nothing is logged
				}
				if _, err := tx.UpdateTask(ctx, tk, store.TaskPatch{Title: ptr("by " + u)}); err != nil {
					return err
				}
				tx.Append(&store.LogEntry{Type: "taskUpdated", Data: []byte(u)})
				return nil
			})
		}
		unitB := func() {
			defer close(doneB)
			errB = s.Update(ctx, func(tx store.Tx) error {
				runsB.Add(1)
				if _, err := tx.RemoveProjectMember(ctx, "prj_race", u); err != nil {
					return err
				}
				closeOnce(removed)
				<-resumeB
				tx.Append(&store.LogEntry{Type: "memberRemoved", Data: []byte(u)})
				return nil
			})
		}
		var blocked bool
		if aFirst {
			go unitA()
			<-checked
			go unitB()
			blocked = untilBlocked(t, s, doneB)
			close(resumeA)
		} else {
			go unitB()
			<-removed
			go unitA()
			blocked = untilBlocked(t, s, doneA)
			close(resumeB)
		}
		<-doneA
		<-doneB
		if errA != nil || errB != nil {
			t.Fatalf("round %d: unit A: %v; unit B: %v", round, errA, errB)
		}
		seqA, seqB := entrySeq(t, s, "taskUpdated", u), entrySeq(t, s, "memberRemoved", u)
		if seqB == 0 {
			t.Fatalf("round %d: the removal was not logged", round)
		}
		if sawMember.Load() && (seqA == 0 || seqA > seqB) {
			t.Errorf("round %d: A's check passed, but its task entry (seq %d) follows the removal (seq %d)", round, seqA, seqB)
		}
		if !sawMember.Load() && seqA != 0 {
			t.Errorf("round %d: A saw no member, yet logged a change (seq %d)", round, seqA)
		}
		// How the locks decided it: the unit that came second waited.
		if !blocked {
			t.Errorf("round %d: the second unit did not wait for the first (A paused first: %v)", round, aFirst)
		}
		if aFirst && !sawMember.Load() {
			t.Errorf("round %d: A checked before the removal, yet saw no member", round)
		}
		if !aFirst && sawMember.Load() {
			t.Errorf("round %d: A checked behind a removal in progress, yet saw a member", round)
		}
		if runsA.Load() != 1 || runsB.Load() != 1 {
			t.Errorf("round %d: fn ran %d and %d times, want once each (no deadlock)", round, runsA.Load(), runsB.Load())
		}
	}
}

// closeOnce closes c unless it is closed (fn may run again on a retry).
func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// Two reassignments of one task: the second's LockTask waits for the first
// unit, then reads the assignee it committed, so the (previous, new) pairs
// chain and are logged in that order.
func TestReassignmentsChainUnderLockTask(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	users := []string{"alice", "bob", "carol"}
	for _, u := range users {
		mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: u, Name: u})))
	}
	mustCreate(t, createErr(s.CreateProject(ctx, store.Project{ID: "prj_a", Name: "P", OwnerID: "alice"})),
		createErr(s.CreateTask(ctx, store.Task{ID: "tsk_a", Title: "t", ProjectID: "prj_a", UserID: "alice", AssignedTo: "alice"})))
	type change struct{ Prev, New string }
	reassign := func(to string, locked chan<- struct{}, resume <-chan struct{}) (change, int64, error) {
		var c change
		e := &store.LogEntry{Type: "taskAssigned"}
		err := s.Update(ctx, func(tx store.Tx) error {
			cur, err := tx.LockTask(ctx, "tsk_a")
			if err != nil {
				return err
			}
			if locked != nil {
				close(locked)
				<-resume
			}
			if _, err := tx.UpdateTask(ctx, "tsk_a", store.TaskPatch{AssignedTo: ptr(to)}); err != nil {
				return err
			}
			c = change{cur.AssignedTo, to}
			e.Data, err = json.Marshal(c)
			tx.Append(e)
			return err
		})
		return c, e.Seq, err
	}
	for round := range 10 {
		first, second := users[(round+1)%3], users[(round+2)%3]
		locked, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var (
			c1, c2     change
			seq1, seq2 int64
			err1, err2 error
		)
		go func() {
			c1, seq1, err1 = reassign(first, locked, resume)
			close(done)
		}()
		<-locked
		done2 := make(chan struct{})
		go func() {
			c2, seq2, err2 = reassign(second, nil, nil)
			close(done2)
		}()
		if !untilBlocked(t, s, done2) {
			t.Errorf("round %d: the second LockTask did not wait for the first unit", round)
		}
		close(resume)
		<-done
		<-done2
		if err1 != nil || err2 != nil {
			t.Fatalf("round %d: %v; %v", round, err1, err2)
		}
		if c2.Prev != c1.New {
			t.Errorf("round %d: second reassignment saw previous %q, the first set %q", round, c2.Prev, c1.New)
		}
		if seq1 >= seq2 {
			t.Errorf("round %d: first reassignment logged at %d, second at %d", round, seq1, seq2)
		}
	}
}

// A unit that checks membership and locks a task, in either order, and
// DeleteProject of that project (in a unit of its own, to count its runs)
// run between the unit's two calls: the
// unit's first call pinned the project, so DeleteProject waits for the
// unit, then deletes the task as the unit left it; no deadlock, fn runs
// once.
func TestDeleteProjectWaitsForDecisions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"})))
	check := func(tx store.Tx, pid, _ string) error {
		_, err := tx.IsProjectMember(ctx, pid, "alice")
		return err
	}
	lock := func(tx store.Tx, _, tid string) error {
		_, err := tx.LockTask(ctx, tid)
		return err
	}
	orders := []struct {
		name        string
		first, then func(tx store.Tx, pid, tid string) error
	}{
		{"check, then lock", check, lock},
		{"lock, then check", lock, check},
	}
	for _, o := range orders {
		name := o.name
		p, err := s.CreateProject(ctx, store.Project{Name: name, OwnerID: "alice"})
		mustCreate(t, err)
		tk, err := s.CreateTask(ctx, store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"})
		mustCreate(t, err)
		decided, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var runs atomic.Int32
		var errUnit error
		go func() {
			defer close(done)
			errUnit = s.Update(ctx, func(tx store.Tx) error {
				runs.Add(1)
				if err := o.first(tx, p.ID, tk.ID); err != nil {
					return err
				}
				closeOnce(decided)
				<-resume
				if err := o.then(tx, p.ID, tk.ID); err != nil {
					return err
				}
				if _, err := tx.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr("decided")}); err != nil {
					return err
				}
				tx.Append(&store.LogEntry{Type: "taskUpdated"})
				return nil
			})
		}()
		<-decided
		var deleted []store.Task
		var errDelete error
		var deleteRuns atomic.Int32
		deleteDone := make(chan struct{})
		go func() {
			defer close(deleteDone)
			errDelete = s.Update(ctx, func(tx store.Tx) error {
				deleteRuns.Add(1)
				var err error
				_, deleted, err = tx.DeleteProject(ctx, p.ID)
				return err
			})
		}()
		if !untilBlocked(t, s, deleteDone) {
			t.Errorf("%s: DeleteProject did not wait for the unit", name)
		}
		close(resume)
		<-done
		<-deleteDone
		if errUnit != nil || errDelete != nil {
			t.Fatalf("%s: unit: %v; DeleteProject: %v", name, errUnit, errDelete)
		}
		if runs.Load() != 1 || deleteRuns.Load() != 1 {
			t.Errorf("%s: the units ran %d and %d times, want once each (no deadlock)", name, runs.Load(), deleteRuns.Load())
		}
		if len(deleted) != 1 || deleted[0].Title != "decided" {
			t.Errorf("%s: DeleteProject returned %+v, want the task as the unit left it", name, deleted)
		}
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

// The team's creator removing u while u leaves, each after checking a
// membership in the unit: the second waits at its check, sees u gone, and
// neither deadlocks.
func TestTeamRemovalsAfterChecks(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	mustCreate(t, createErr(s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"})),
		createErr(s.CreateUser(ctx, store.User{ID: "bob", Name: "Bob"})),
		createErr(s.CreateTeam(ctx, store.Team{ID: "team_t", Name: "T", CreatedBy: "alice"})))
	for round := range 5 {
		mustCreate(t, createErr(s.AddTeamMember(ctx, "team_t", "bob")))
		checked, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var runs atomic.Int32
		var mu sync.Mutex
		var removals []string
		remove := func(actor string, pause bool) error {
			return s.Update(ctx, func(tx store.Tx) error {
				runs.Add(1)
				ok, err := tx.IsTeamMember(ctx, "team_t", actor)
				if err != nil || !ok {
					return err
				}
				if pause {
					closeOnce(checked)
					<-resume
				}
				removed, err := tx.RemoveTeamMember(ctx, "team_t", "bob")
				if err != nil || !removed {
					return err
				}
				mu.Lock()
				removals = append(removals, actor)
				mu.Unlock()
				tx.Append(&store.LogEntry{Type: "teamMemberRemoved"})
				return nil
			})
		}
		var errCreator, errLeave error
		go func() { errCreator = remove("alice", true); close(done) }()
		<-checked
		leaveDone := make(chan struct{})
		go func() { errLeave = remove("bob", false); close(leaveDone) }()
		if !untilBlocked(t, s, leaveDone) {
			t.Errorf("round %d: bob's check did not wait for alice's unit", round)
		}
		close(resume)
		<-done
		<-leaveDone
		if errCreator != nil || errLeave != nil {
			t.Fatalf("round %d: %v; %v", round, errCreator, errLeave)
		}
		if len(removals) != 1 || removals[0] != "alice" {
			t.Errorf("round %d: removals by %v, want alice's only", round, removals)
		}
		if runs.Load() != 2 {
			t.Errorf("round %d: fn ran %d times for two units, want 2 (no deadlock)", round, runs.Load())
		}
	}
}

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
	if runs.Load() != 3 {
		t.Errorf("fn ran %d times for two units that deadlocked once, want 3", runs.Load())
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
