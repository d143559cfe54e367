package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// logTests specify units of work (Update) and the event log.
var logTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"UpdateCommits", testUpdateCommits},
	{"UpdateRollsBack", testUpdateRollsBack},
	{"UpdateWithoutEvents", testUpdateWithoutEvents},
	{"LogGapless", testLogGapless},
	{"LogOrderIsCommitOrder", func(t *testing.T, s store.Store) { LogOrder(t, s) }},
	{"ReadLog", testReadLog},
	{"TrimLog", testTrimLog},
	{"LogEpoch", testLogEpoch},
}

// wholeLog reads every entry after 0, page by page.
func wholeLog(t *testing.T, s store.Store) []store.LogEntry {
	t.Helper()
	var out []store.LogEntry
	after := int64(0)
	for {
		page, err := s.ReadLog(t.Context(), after, store.MaxLogRead)
		noErr(t, err, "ReadLog")
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

func seqs(es []store.LogEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// seqRange is from, from+1, …, to.
func seqRange(from, to int64) []int64 {
	out := make([]int64, 0)
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func wantHead(t *testing.T, s store.Store, want int64, what string) {
	t.Helper()
	head, err := s.LogHead(t.Context())
	noErr(t, err, "LogHead")
	same(t, what+": LogHead", head, want)
}

// sameEntry compares what a reader gets with what was appended: Data and
// Control byte for byte (opaque, not re-encoded), nil Control stays nil.
func sameEntry(t *testing.T, what string, got, want store.LogEntry) {
	t.Helper()
	if got.Seq != want.Seq || got.Type != want.Type || !slices.Equal(got.Rooms, want.Rooms) ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Control, want.Control) ||
		(got.Control == nil) != (want.Control == nil) || !got.At.Equal(want.At) || got.At.Location() != time.UTC {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// Everything fn does commits at once, with its entries numbered from 1;
// reads on tx see its own writes.
func testUpdateCommits(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := &store.LogEntry{Type: "taskCreated", Rooms: []string{"user:alice", "project:p"},
		Data: []byte(`{"b": 1,  "a":[2]}`), Control: []byte(`{"close":"x"}`)}
	second := &store.LogEntry{Type: "ping", At: at(7).Add(1234 * time.Nanosecond)}
	before := store.Now()
	err := s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
			return err
		}
		u, err := tx.User(ctx, "alice")
		if err != nil {
			return fmt.Errorf("own user unseen: %w", err)
		}
		same(t, "user read in the unit", u.Name, "Alice")
		tk, err := tx.CreateTask(ctx, store.Task{ID: "tsk_1", Title: "one", UserID: "alice"})
		if err != nil {
			return err
		}
		tk, err = tx.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr("uno")})
		if err != nil {
			return err
		}
		same(t, "version in the unit", tk.Version, int64(2))
		page, err := tx.VisibleTasks(ctx, "alice", wholePage())
		if err != nil {
			return err
		}
		sameList(t, "visible tasks in the unit", taskIDs(page), []string{"tsk_1"})
		tx.Append(first, nil)
		tx.Append(second)
		return nil
	})
	noErr(t, err, "Update")
	got, err := s.Task(ctx, "tsk_1")
	noErr(t, err, "Task after Update")
	same(t, "committed title", got.Title, "uno")

	same(t, "first seq", first.Seq, int64(1))
	same(t, "second seq", second.Seq, int64(2))
	if first.At.Before(before) || first.At.After(store.Now()) || first.At != first.At.Truncate(time.Microsecond) {
		t.Errorf("a zero At became %v, want the commit's time at microseconds", first.At)
	}
	same(t, "a given At is kept (UTC, microseconds)", second.At, at(7).Add(time.Microsecond))
	wantHead(t, s, 2, "after two entries")

	log := wholeLog(t, s)
	if len(log) != 2 {
		t.Fatalf("log holds %d entries, want 2", len(log))
	}
	sameEntry(t, "first entry read back", log[0], *first)
	sameEntry(t, "second entry read back", log[1], *second)
	if log[1].Control != nil {
		t.Errorf("no Control read back as %q, want nil", log[1].Control)
	}
}

// An error or a panic in fn leaves nothing behind, entries included, and
// the numbering goes on without a gap.
func testUpdateRollsBack(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "alice")
	boom := errors.New("boom")
	e := &store.LogEntry{Type: "lost"}
	change := func(tx store.Tx) {
		if _, err := tx.CreateTask(ctx, store.Task{ID: "tsk_x", Title: "x", UserID: "alice"}); err != nil {
			t.Errorf("CreateTask in the unit: %v", err)
		}
		if _, err := tx.UpdateUser(ctx, "alice", store.UserPatch{Name: ptr("Changed")}); err != nil {
			t.Errorf("UpdateUser in the unit: %v", err)
		}
		tx.Append(e)
	}
	wantUnchanged := func(what string) {
		t.Helper()
		_, err := s.Task(ctx, "tsk_x")
		wantCode(t, err, errs.NotFound, what+": task of the rolled back unit")
		u, err := s.User(ctx, "alice")
		noErr(t, err, "User")
		same(t, what+": user name", u.Name, "Alice")
		wantHead(t, s, 0, what)
		if n := len(wholeLog(t, s)); n != 0 {
			t.Errorf("%s: log holds %d entries, want none", what, n)
		}
		same(t, what+": Seq of the entry", e.Seq, int64(0))
	}

	err := s.Update(ctx, func(tx store.Tx) error { change(tx); return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Update returned %v, want fn's error", err)
	}
	wantUnchanged("after an error")

	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want fn's panic to go on", r)
			}
		}()
		_ = s.Update(ctx, func(tx store.Tx) error { change(tx); panic("kaboom") })
		t.Error("Update returned after fn panicked")
	}()
	wantUnchanged("after a panic")

	// A method's error returned by fn rolls back what came before it.
	err = s.Update(ctx, func(tx store.Tx) error {
		change(tx)
		_, err := tx.UpdateTask(ctx, "tsk_missing", store.TaskPatch{Title: ptr("y")})
		return err
	})
	wantCode(t, err, errs.NotFound, "Update with a failing method")
	wantUnchanged("after a failing method")

	ok := &store.LogEntry{Type: "kept"}
	noErr(t, s.Update(ctx, func(tx store.Tx) error { tx.Append(ok); return nil }), "Update")
	same(t, "seq after rollbacks", ok.Seq, int64(1))
}

// A unit of work, or a plain write, without entries leaves the head where it
// was (it does not serialize on it).
func testUpdateWithoutEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, s.Update(ctx, func(tx store.Tx) error { tx.Append(&store.LogEntry{Type: "a"}); return nil }), "Update")
	noErr(t, s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{ID: "bob", Name: "Bob"})
		return err
	}), "Update without entries")
	noErr(t, s.Update(ctx, func(tx store.Tx) error { tx.Append(); return nil }), "Update appending nothing")
	mkUser(t, s, "carol")
	wantHead(t, s, 1, "after units without entries")
	if _, err := s.User(ctx, "bob"); err != nil {
		t.Errorf("the unit without entries did not commit: %v", err)
	}
}

// Seqs are 1, 2, 3, … across units of work of several entries, with failed
// units between them.
func testLogGapless(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []string
	for i := range 30 {
		n := i%3 + 1
		err := s.Update(ctx, func(tx store.Tx) error {
			for j := range n {
				tx.Append(&store.LogEntry{Type: fmt.Sprintf("u%d-%d", i, j)})
			}
			if i%4 == 3 {
				return errors.New("rolled back")
			}
			return nil
		})
		if i%4 == 3 {
			continue
		}
		noErr(t, err, "Update")
		for j := range n {
			want = append(want, fmt.Sprintf("u%d-%d", i, j))
		}
	}
	log := wholeLog(t, s)
	sameList(t, "seqs", seqs(log), seqRange(1, int64(len(want))))
	got := make([]string, len(log))
	for i, e := range log {
		got[i] = e.Type
	}
	sameList(t, "types in append order", got, want)
	wantHead(t, s, int64(len(want)), "after the units")
}

// LogOrder specifies that the log's order is the commit order of
// conflicting writers: 8 goroutines, spread over stores (all on one
// database: several instances), each update one task in a unit of work
// and log the version they got; some units roll back. The log must list
// versions strictly increasing, with gapless seqs.
func LogOrder(t *testing.T, stores ...store.Store) {
	ctx := t.Context()
	const writers, each = 8, 15
	s := stores[0]
	mkUser(t, s, "alice")
	tk := mkTask(t, s, store.Task{ID: "tsk_hot", UserID: "alice"})
	var mu sync.Mutex
	committed := 0
	race(writers, func(w int) {
		st := stores[w%len(stores)]
		for i := range each {
			rollback := i%5 == 4
			var e store.LogEntry
			err := st.Update(ctx, func(tx store.Tx) error {
				got, err := tx.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr(fmt.Sprintf("w%d-%d", w, i))})
				if err != nil {
					return err
				}
				data, _ := json.Marshal(got.Version)
				e = store.LogEntry{Type: "taskUpdated", Rooms: []string{"task:" + tk.ID}, Data: data}
				tx.Append(&e)
				if rollback {
					return errors.New("rolled back")
				}
				return nil
			})
			if rollback {
				continue
			}
			if err != nil {
				t.Errorf("writer %d: Update %d: %v", w, i, err)
				return
			}
			mu.Lock()
			committed++
			mu.Unlock()
		}
	})
	log := wholeLog(t, s)
	sameList(t, "seqs", seqs(log), seqRange(1, int64(committed)))
	prev := int64(1)
	for _, e := range log {
		var v int64
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatalf("entry %d: data %q: %v", e.Seq, e.Data, err)
		}
		if v != prev+1 {
			t.Errorf("entry %d logs version %d after version %d: log order is not commit order", e.Seq, v, prev)
		}
		prev = v
	}
	for _, st := range stores {
		wantHead(t, st, int64(committed), "after the writers")
	}
}

// ReadLog pages by seq and bounds its limit.
func testReadLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.ReadLog(ctx, 0, 10)
	noErr(t, err, "ReadLog of an empty log")
	same(t, "entries of an empty log", len(got), 0)
	wantHead(t, s, 0, "empty log")

	noErr(t, s.Update(ctx, func(tx store.Tx) error {
		for i := range 25 {
			tx.Append(&store.LogEntry{Type: fmt.Sprint("e", i+1)})
		}
		return nil
	}), "Update")
	tests := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 10, seqRange(1, 10)},
		{10, 10, seqRange(11, 20)},
		{20, 10, seqRange(21, 25)},
		{25, 10, nil},
		{99, 10, nil},
		{-5, 1, []int64{1}},
		{3, store.MaxLogRead, seqRange(4, 25)},
	}
	for _, tc := range tests {
		got, err := s.ReadLog(ctx, tc.after, tc.limit)
		noErr(t, err, "ReadLog")
		sameList(t, fmt.Sprintf("ReadLog(%d, %d)", tc.after, tc.limit), seqs(got), tc.want)
	}
	for _, limit := range []int{0, -1, store.MaxLogRead + 1} {
		_, err := s.ReadLog(ctx, 0, limit)
		wantCode(t, err, errs.BadUserInput, fmt.Sprintf("ReadLog limit %d", limit))
	}
}

// appendAt appends one entry per time, in one unit of work each.
func appendAt(t *testing.T, s store.Store, times ...time.Time) {
	t.Helper()
	for _, when := range times {
		noErr(t, s.Update(t.Context(), func(tx store.Tx) error {
			tx.Append(&store.LogEntry{Type: "e", At: when})
			return nil
		}), "Update")
	}
}

// TrimLog cuts a prefix by age and by count and says where the log now
// starts; the head never moves back.
func testTrimLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	trim := func(before time.Time, keep int, wantOldest int64, wantSeqs []int64, what string) {
		t.Helper()
		oldest, err := s.TrimLog(ctx, before, keep)
		noErr(t, err, what)
		same(t, what+": oldest", oldest, wantOldest)
		sameList(t, what+": seqs kept", seqs(wholeLog(t, s)), wantSeqs)
	}
	trim(at(100), -1, 1, nil, "empty log")

	appendAt(t, s, at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10))
	trim(at(1), -1, 1, seqRange(1, 10), "nothing older")
	trim(at(4), -1, 4, seqRange(4, 10), "by age")
	trim(time.Time{}, 5, 6, seqRange(6, 10), "by count")
	trim(time.Time{}, 100, 6, seqRange(6, 10), "count above the size")
	trim(at(8), 1, 10, []int64{10}, "by age and count")
	trim(at(100), -1, 11, nil, "everything")
	wantHead(t, s, 10, "after trimming everything")
	appendAt(t, s, at(3), at(1), at(9))
	// Age trims a prefix, never a hole: seq 12 is older than 11.
	trim(at(2), -1, 13, []int64{13}, "clocks out of order")
	trim(time.Time{}, 0, 14, nil, "keep none")
}

// The epoch is created once per database and then stays.
func testLogEpoch(t *testing.T, s store.Store) {
	ctx := t.Context()
	e1, err := s.LogEpoch(ctx)
	noErr(t, err, "LogEpoch")
	if e1 == "" {
		t.Fatal("empty epoch")
	}
	e2, err := s.LogEpoch(ctx)
	noErr(t, err, "LogEpoch again")
	same(t, "epoch on a second call", e2, e1)
	stored, err := s.SetSettingIfAbsent(ctx, store.LogEpochKey, "other")
	noErr(t, err, "SetSettingIfAbsent")
	same(t, "epoch as stored", stored, e1)
}

// testLogEpochPerDatabase: two databases, two epochs.
func testLogEpochPerDatabase(t *testing.T, open func(t *testing.T) store.Store) {
	a, err := open(t).LogEpoch(t.Context())
	noErr(t, err, "LogEpoch")
	b, err := open(t).LogEpoch(t.Context())
	noErr(t, err, "LogEpoch")
	if a == b {
		t.Errorf("two databases share the epoch %q", a)
	}
}

// LogSurvivesReopen specifies that the log, its head and the epoch are the
// database's: open opens the same database each time it is called (a
// restart, another instance; the stores it returns are closed here), fresh
// a new database, which has an epoch of its own.
func LogSurvivesReopen(t *testing.T, open func() (store.Store, error), fresh func(t *testing.T) store.Store) {
	ctx := t.Context()
	s, err := open()
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

	if s, err = open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if got, err := s.LogEpoch(ctx); err != nil || got != epoch {
		t.Errorf("epoch after reopen: %q, %v; want %q", got, err, epoch)
	}
	if head, err := s.LogHead(ctx); err != nil || head != 1 {
		t.Errorf("head after reopen: %d, %v; want 1", head, err)
	}
	if got, err := s.ReadLog(ctx, 0, 10); err != nil || len(got) != 1 || got[0].Seq != 1 || got[0].Type != "t" {
		t.Errorf("log after reopen: %+v, %v", got, err)
	}
	other, err := fresh(t).LogEpoch(ctx)
	if err != nil || other == epoch {
		t.Errorf("epoch of a new database: %q, %v; want one other than %q", other, err, epoch)
	}
}
