package cluster

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/proctest"
	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

// TestResumeOnAnotherInstance: a cursor from A resumes on B — cursors are
// positions in the cluster's one log. The resumed subscription gets
// exactly what it missed, once, in order, while changes keep coming
// through both instances during the resume, and then goes on live with
// no gap or duplicate at the seam.
func TestResumeOnAnotherInstance(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, nil, "alice")
	p := createProject(a, "alice", "P")
	first := a.Subscribe("alice", taskQ, nil)
	createTask(a, "alice", "t000", p, "")
	cursor := want(t, first, "TASK_CREATED", "t000").Cursor
	first.Conn.Close() // the client goes away…

	const missed, during = 10, 40
	var all []string
	for n := 1; n <= missed; n++ {
		title := fmt.Sprintf("t%03d", n)
		createTask([]*proctest.Instance{a, b}[n%2], "alice", title, p, "")
		all = append(all, title)
	}
	// …and comes back on B while writes go on through A and B.
	var wg sync.WaitGroup
	fail := make(chan error, 1)
	wg.Go(func() {
		for n := missed + 1; n <= missed+during; n++ {
			if err := tryCreateTask([]*proctest.Instance{a, b}[n%2], "alice", fmt.Sprintf("t%03d", n), p); err != nil {
				fail <- err
				return
			}
		}
	})
	tasks := b.Subscribe("alice", taskQ, after(cursor, nil))
	proj := b.Subscribe("alice", projectQ, after(cursor, map[string]any{"p": p}))
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	for n := missed + 1; n <= missed+during; n++ {
		all = append(all, fmt.Sprintf("t%03d", n))
	}
	for _, s := range []*proctest.Sub{tasks, proj} {
		evs := collect(t, s, len(all))
		if got := titles(evs); !slices.Equal(got, all) {
			t.Fatalf("%s resumed after t000: %q, want %q", s.Who(), got, all)
		}
		gapless(t, s.Who(), append([]event{{Cursor: cursor}}, evs...))
	}
	createTask(a, "alice", "live", p, "")
	want(t, tasks, "TASK_CREATED", "live")
	want(t, proj, "TASK_CREATED", "live")
	tasks.Nothing(proctest.Quiet)
	proj.Nothing(proctest.Quiet)
}

// TestReplayNeverShowsPreJoinEvents: carol, added to P after some of its
// changes, resumes from a cursor older than all of them: she gets P's
// events from her joining on, never one from before — on the instance
// that did not see her join — and none from while she was out of P.
func TestReplayNeverShowsPreJoinEvents(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, nil, "alice", "carol")
	createTeam(a, "alice", "T", "carol") // so alice may add her to P
	p := createProject(a, "alice", "P")
	mine := a.Subscribe("carol", taskQ, nil)
	createTask(a, "carol", "carol's own", "", "")
	cursor := want(t, mine, "TASK_CREATED", "carol's own").Cursor
	mine.Conn.Close()

	old := createTask(a, "alice", "pre-join 1", p, "")
	createTask(a, "alice", "pre-join 2", p, "")
	if err := retitle(a, "alice", old, "pre-join 1, renamed"); err != nil {
		t.Fatal(err)
	}
	addMember(a, "alice", p, "carol")
	createTask(a, "alice", "post-join", p, "")
	if err := retitle(a, "alice", old, "old task, changed after the join"); err != nil {
		t.Fatal(err)
	}

	tasks := b.Subscribe("carol", taskQ, after(cursor, nil))
	want(t, tasks, "TASK_CREATED", "post-join")
	want(t, tasks, "TASK_UPDATED", "old task, changed after the join")
	tasks.Nothing(proctest.Quiet)
	proj := b.Subscribe("carol", projectQ, after(cursor, map[string]any{"p": p}))
	evs := collect(t, proj, 2)
	if evs[0].Type == "PROJECT_MEMBER_ADDED" { // her own joining may be shown
		evs = append(evs[1:], next(t, proj))
	}
	if got := titles(evs); !slices.Equal(got, []string{"post-join", "old task, changed after the join"}) {
		t.Fatalf("carol's projectUpdates resumed from before her joining: %v", evs)
	}
	proj.Nothing(proctest.Quiet)

	// Out of P and back: nothing from while she was out.
	removeMember(a, "alice", p, "carol")
	createTask(a, "alice", "while carol was out", p, "")
	addMember(a, "alice", p, "carol")
	createTask(a, "alice", "back", p, "")
	again := a.Subscribe("carol", taskQ, after(cursor, nil))
	var got []event
	for {
		ev := next(t, again)
		got = append(got, ev)
		if ev.title() == "while carol was out" || ev.title() == "pre-join 2" || ev.title() == "pre-join 1" {
			t.Fatalf("carol's replay shows a change of P from when she was not a member: %v", got)
		}
		if ev.title() == "back" {
			break
		}
	}
	increasing(t, again.Who(), got)
	again.Nothing(proctest.Quiet)
}

// TestResumeRefusals: a cursor of another history — another database,
// hence another epoch — is CURSOR_EXPIRED on every resumable
// subscription, never a silent gap; a malformed one is BAD_USER_INPUT.
func TestResumeRefusals(t *testing.T) {
	t.Parallel()
	old := proctest.New(t, proctest.Options{})
	old.Users("alice")
	a := old.Start("old", nil)
	s := a.Subscribe("alice", taskQ, nil)
	createTask(a, "alice", "in the old database", "", "")
	stale := want(t, s, "TASK_CREATED", "in the old database").Cursor

	fresh := proctest.New(t, proctest.Options{})
	fresh.Users("alice")
	b := fresh.Start("new", nil)
	p := createProject(b, "alice", "P")
	team := createTeam(b, "alice", "T")
	createTask(b, "alice", "in the new database", p, "") // a log of its own, as long as the old one

	sp := pos(t, stale)
	forged := realtime.Position{Epoch: "no-such-epoch", Seq: 1}.Cursor()
	subs := []struct {
		name, query string
		vars        map[string]any
	}{
		{"taskUpdates", taskQ, nil},
		{"projectUpdates", projectQ, map[string]any{"p": p}},
		{"notifications", notifQ, nil},
		{"teamUpdates", teamQ, map[string]any{"t": team}},
	}
	for _, sub := range subs {
		for _, c := range []struct{ what, cursor, code string }{
			{"a cursor of another database", stale, "CURSOR_EXPIRED"},
			{"an unknown epoch", forged, "CURSOR_EXPIRED"},
			{"not a cursor", "not-a-cursor", "BAD_USER_INPUT"},
			{"a cursor with a non-canonical sequence", base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "v1:%s:0%d", sp.Epoch, sp.Seq)), "BAD_USER_INPUT"},
			{"an unknown version", base64.RawURLEncoding.EncodeToString([]byte("v9:x:1")), "BAD_USER_INPUT"},
		} {
			e := b.Subscribe("alice", sub.query, after(c.cursor, sub.vars)).Error()
			if e.Code() != c.code {
				t.Errorf("%s after %s: %s (%s), want %s", sub.name, c.what, e.Message, e.Code(), c.code)
			}
		}
	}
}

// TestResumeOlderThanRetention: with HISTORY_MAX=3, once the instances
// have trimmed the log, a cursor older than the kept history is
// CURSOR_EXPIRED on any instance — never a replay with a silent gap —
// while one within it still resumes exactly. Until the trim (every
// second here: HISTORY_TRIM_EVERY) the full replay is still exact.
func TestResumeOlderThanRetention(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, map[string]string{"HISTORY_MAX": "3", "HISTORY_TRIM_EVERY": "1s"}, "alice")
	all := a.Subscribe("alice", taskQ, nil)
	var evs []event
	for n := range 7 {
		title := fmt.Sprintf("t%d", n)
		createTask([]*proctest.Instance{a, b}[n%2], "alice", title, "", "")
		evs = append(evs, want(t, all, "TASK_CREATED", title))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := b.Subscribe("alice", taskQ, after(evs[0].Cursor, nil))
		r, err := s.Wait(proctest.EventTimeout)
		var oe *wsclient.OperationError
		if errors.As(err, &oe) && len(oe.Errors) > 0 && oe.Errors[0].Code() == "CURSOR_EXPIRED" {
			s.Conn.Close()
			break
		}
		// Not trimmed yet: the replay is whole.
		if err != nil {
			t.Fatalf("resume after t0: %v, want t1 or CURSOR_EXPIRED", err)
		}
		if ev := decode(t, s.Who(), r); ev.title() != "t1" {
			t.Fatalf("resume after t0, before the trim: %s, want t1 first", ev)
		}
		s.Conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("a cursor 6 events back still resumes 20s after, with HISTORY_MAX=3 trimmed every second: the log is not trimmed")
		}
		time.Sleep(500 * time.Millisecond)
	}
	s := a.Subscribe("alice", taskQ, after(evs[4].Cursor, nil))
	if got := titles(collect(t, s, 2)); !slices.Equal(got, []string{"t5", "t6"}) {
		t.Fatalf("resume within the kept history: %q, want t5 t6", got)
	}
	s.Nothing(proctest.Quiet)
}
