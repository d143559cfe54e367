package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// snapshotTests specify read snapshots (Store.Read) and LockTask.
var snapshotTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"ReadSeesHeadAndDataTogether", testReadSeesHeadAndDataTogether},
	{"ReadTxWritesFail", testReadTxWritesFail},
	{"ReadReturnsFnError", testReadReturnsFnError},
	{"LockTask", testLockTask},
	{"LockTaskChainsReassignments", testLockTaskChainsReassignments},
}

// Each unit of work adds one member to a project and appends an entry
// naming them, while readers take snapshots: in every snapshot a user is a
// member exactly when their entry's seq is at most the snapshot's head,
// and the snapshot does not move while it is read.
func testReadSeesHeadAndDataTogether(t *testing.T, s store.Store) {
	ctx := t.Context()
	const joins, readers = 60, 3
	mkUser(t, s, "owner")
	mkProject(t, s, "prj_snap", "owner")
	users := make([]string, joins)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
		mkUser(t, s, users[i])
	}

	type view struct {
		head    int64
		members []string
	}
	var (
		mu    sync.Mutex
		views []view
		done  atomic.Bool
	)
	race(1+readers, func(w int) {
		if w == 0 {
			defer done.Store(true)
			for _, u := range users {
				err := s.Update(ctx, func(tx store.Tx) error {
					if _, err := tx.AddProjectMember(ctx, "prj_snap", u); err != nil {
						return err
					}
					tx.Append(&store.LogEntry{Type: "joined", Data: []byte(`"` + u + `"`)})
					return nil
				})
				if err != nil {
					t.Errorf("Update adding %s: %v", u, err)
					return
				}
			}
			return
		}
		for n := 0; n < 5 || !done.Load(); n++ {
			var v view
			err := s.Read(ctx, func(tx store.ReadTx) error {
				var err error
				if v.head, err = tx.LogHead(ctx); err != nil {
					return err
				}
				ms, err := tx.ProjectMembers(ctx, "prj_snap")
				if err != nil {
					return err
				}
				v.members = userIDs(ms)
				// The snapshot stays put while writers commit.
				again, err := tx.ProjectMembers(ctx, "prj_snap")
				if err != nil {
					return err
				}
				if !slices.Equal(userIDs(again), v.members) {
					t.Errorf("members moved within one snapshot: %v then %v", v.members, userIDs(again))
				}
				head, err := tx.LogHead(ctx)
				if err != nil {
					return err
				}
				if head != v.head {
					t.Errorf("head moved within one snapshot: %d then %d", v.head, head)
				}
				return nil
			})
			if err != nil {
				t.Errorf("Read: %v", err)
				return
			}
			mu.Lock()
			views = append(views, v)
			mu.Unlock()
		}
	})

	seqOf := map[string]int64{}
	for _, e := range wholeLog(t, s) {
		var u string
		if err := json.Unmarshal(e.Data, &u); err != nil {
			t.Fatalf("entry %d: %q: %v", e.Seq, e.Data, err)
		}
		seqOf[u] = e.Seq
	}
	same(t, "entries logged", len(seqOf), joins)
	for _, v := range views {
		var want []string
		for _, u := range users {
			if seqOf[u] <= v.head {
				want = append(want, u)
			}
		}
		got := slices.DeleteFunc(slices.Clone(v.members), func(u string) bool { return u == "owner" })
		sameList(t, fmt.Sprintf("members in the snapshot at head %d", v.head), got, want)
	}
	if len(views) < readers*5 {
		t.Errorf("%d snapshots read, want at least %d", len(views), readers*5)
	}
}

// Writes through a ReadTx fail, with an internal error, and change nothing.
func testReadTxWritesFail(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")
	mkProject(t, s, "prj_ro", "alice")
	tk := mkTask(t, s, store.Task{ID: "tsk_ro", UserID: "alice", ProjectID: "prj_ro"})
	writes := []struct {
		name string
		fn   func(tx store.ReadTx) error
	}{
		{"CreateUser", func(tx store.ReadTx) error {
			_, err := tx.CreateUser(ctx, store.User{ID: "carol", Name: "Carol"})
			return err
		}},
		{"UpdateTask", func(tx store.ReadTx) error {
			_, err := tx.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr("changed")})
			return err
		}},
		{"AddProjectMember", func(tx store.ReadTx) error {
			_, err := tx.AddProjectMember(ctx, "prj_ro", "bob")
			return err
		}},
		{"DeleteTask", func(tx store.ReadTx) error {
			_, err := tx.DeleteTask(ctx, tk.ID)
			return err
		}},
		{"SetSettingIfAbsent", func(tx store.ReadTx) error {
			_, err := tx.SetSettingIfAbsent(ctx, "k", "v")
			return err
		}},
	}
	for _, w := range writes {
		var inner error
		err := s.Read(ctx, func(tx store.ReadTx) error {
			inner = w.fn(tx)
			return inner
		})
		if inner == nil {
			t.Errorf("%s through a ReadTx succeeded", w.name)
			continue
		}
		wantCode(t, inner, errs.Internal, w.name+" through a ReadTx")
		if !errors.Is(err, inner) {
			t.Errorf("%s: Read returned %v, want fn's error %v", w.name, err, inner)
		}
	}
	if _, err := s.User(ctx, "carol"); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("user created through a ReadTx: %v", err)
	}
	got, err := s.Task(ctx, tk.ID)
	noErr(t, err, "Task")
	same(t, "task after writes through a ReadTx", got, tk)
	member, err := s.IsProjectMember(ctx, "prj_ro", "bob")
	noErr(t, err, "IsProjectMember")
	same(t, "member added through a ReadTx", member, false)
	v, err := s.SetSettingIfAbsent(ctx, "k", "later")
	noErr(t, err, "SetSettingIfAbsent")
	same(t, "setting stored through a ReadTx", v, "later")
}

// Read returns fn's error as is, and an empty log's head is 0.
func testReadReturnsFnError(t *testing.T, s store.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	var head int64 = -1
	err := s.Read(ctx, func(tx store.ReadTx) error {
		var err error
		head, err = tx.LogHead(ctx)
		noErr(t, err, "LogHead")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Read returned %v, want fn's error", err)
	}
	same(t, "head of an empty log", head, int64(0))
	noErr(t, s.Read(ctx, func(store.ReadTx) error { return nil }), "Read")
}

// LockTask returns what Task returns, alone, in a unit of work and in a
// snapshot; a missing task is NotFound everywhere.
func testLockTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "alice")
	mkProject(t, s, "prj_l", "alice")
	personal := mkTask(t, s, store.Task{ID: "tsk_p", UserID: "alice"})
	inProject := mkTask(t, s, store.Task{ID: "tsk_q", UserID: "alice", ProjectID: "prj_l"})
	check := func(where string, q store.Queries) {
		t.Helper()
		for _, want := range []store.Task{personal, inProject} {
			got, err := q.LockTask(ctx, want.ID)
			noErr(t, err, where+": LockTask")
			same(t, where+": LockTask "+want.ID, got, want)
		}
		_, err := q.LockTask(ctx, "tsk_missing")
		wantNotFound(t, err, "tsk_missing", where+": LockTask of a missing task")
	}
	check("alone", s)
	noErr(t, s.Update(ctx, func(tx store.Tx) error {
		check("in a unit of work", tx)
		// The unit goes on after a NotFound, and its lock does not keep
		// it from changing the task.
		got, err := tx.UpdateTask(ctx, inProject.ID, store.TaskPatch{Title: ptr("locked")})
		noErr(t, err, "UpdateTask after LockTask")
		same(t, "version after LockTask and UpdateTask", got.Version, int64(2))
		return nil
	}), "Update")
	inProject, err := s.Task(ctx, inProject.ID)
	noErr(t, err, "Task")
	same(t, "title committed after LockTask", inProject.Title, "locked")
	noErr(t, s.Read(ctx, func(tx store.ReadTx) error { check("in a snapshot", tx); return nil }), "Read")
}

// Writers reassign one task, each reading the previous assignee with
// LockTask and logging (previous, new): in log order every entry's
// previous assignee is the one the entry before it set, so no reassignment
// notifies a stale previous assignee.
func testLockTaskChainsReassignments(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, each = 4, 10
	users := []string{"alice", "bob", "carol", "dave"}
	mkUsers(t, s, users...)
	tk := mkTask(t, s, store.Task{ID: "tsk_hot", UserID: "alice"})
	type change struct{ Prev, New string }
	race(writers, func(w int) {
		for i := range each {
			next := users[(w+i)%len(users)]
			err := s.Update(ctx, func(tx store.Tx) error {
				cur, err := tx.LockTask(ctx, tk.ID)
				if err != nil {
					return err
				}
				if _, err := tx.UpdateTask(ctx, tk.ID, store.TaskPatch{AssignedTo: ptr(next)}); err != nil {
					return err
				}
				data, err := json.Marshal(change{cur.AssignedTo, next})
				if err != nil {
					return err
				}
				tx.Append(&store.LogEntry{Type: "taskAssigned", Data: data})
				return nil
			})
			if err != nil {
				t.Errorf("writer %d: Update %d: %v", w, i, err)
				return
			}
		}
	})
	log := wholeLog(t, s)
	same(t, "entries", len(log), writers*each)
	prev := ""
	for _, e := range log {
		var c change
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatalf("entry %d: %q: %v", e.Seq, e.Data, err)
		}
		if c.Prev != prev {
			t.Errorf("entry %d: reassignment saw previous assignee %q, but the entry before set %q", e.Seq, c.Prev, prev)
		}
		prev = c.New
	}
	got, err := s.Task(ctx, tk.ID)
	noErr(t, err, "Task")
	same(t, "assignee after the writers", got.AssignedTo, prev)
}
