package cluster

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/taskpulse/taskpulse/internal/proctest"
)

// crashed waits for an instance armed with after-commit=kill to have
// killed itself, and fails clearly if it did not: the binary must be
// built with -tags failpoints (proctest does) from a tree that has the
// failpoint.
func crashed(t *testing.T, i *proctest.Instance) {
	t.Helper()
	if i.Wait(proctest.EventTimeout) == nil {
		t.Fatalf("instance %s armed with %s=after-commit=kill is still running after a commit: is the failpoint in this build?", i.Name, proctest.FailpointsVar)
	}
	if !i.Signaled(syscall.SIGKILL) {
		t.Fatalf("instance %s ended (see its output), but not by SIGKILL: its failpoint did not fire", i.Name)
	}
}

// TestOutboxCrashBetweenCommitAndRelay: instance C commits a change and
// is killed (-9, by the after-commit failpoint) before its relay runs.
// The change is kept, and subscribers on A receive its event exactly
// once, moved by A's relay; the log goes on from there without a gap.
func TestOutboxCrashBetweenCommitAndRelay(t *testing.T) {
	t.Parallel()
	c := proctest.New(t, proctest.Options{})
	c.Users("alice", "bob")
	a := c.Start("A", nil)
	createTeam(a, "alice", "T", "bob")
	p := createProject(a, "alice", "P")
	addMember(a, "alice", p, "bob")
	createTask(a, "alice", "before the crash", p, "")

	alice := a.Subscribe("alice", taskQ, nil)
	bob := a.Subscribe("bob", projectQ, map[string]any{"p": p})
	victim := c.Start("C", map[string]string{proctest.FailpointsVar: "after-commit=kill"})

	// The client of C gets no answer: C died before responding.
	if err := tryCreateTask(victim, "alice", "committed, then C died", p); err == nil {
		t.Fatalf("createTask on C answered: the failpoint did not fire before the response (a binary built without -tags failpoints?)")
	}
	crashed(t, victim)

	var tasks struct{ Tasks []struct{ Title string } }
	a.Do("bob", `query($p: ID!) { tasks(projectId: $p) { title } }`, map[string]any{"p": p}, &tasks)
	if len(tasks.Tasks) != 2 {
		t.Fatalf("P's tasks after C's crash: %+v, want the one committed on C too", tasks.Tasks)
	}
	got := []event{
		want(t, alice, "TASK_CREATED", "committed, then C died"),
		want(t, bob, "TASK_CREATED", "committed, then C died"),
	}
	if got[0].Cursor != got[1].Cursor {
		t.Fatalf("one event, two cursors: %s and %s", got[0].Cursor, got[1].Cursor)
	}
	// Exactly once: the next event is the next change, at the next position.
	createTask(a, "alice", "after the crash", p, "")
	next := want(t, alice, "TASK_CREATED", "after the crash")
	want(t, bob, "TASK_CREATED", "after the crash")
	gapless(t, alice.Who(), []event{got[0], next})
	alice.Nothing(proctest.Quiet)
	bob.Nothing(proctest.Quiet)
}

// TestOutboxCrashEmbedded: the embedded default (SQLite, no Redis) loses
// nothing on a crash either. A process commits a change and is killed
// before publishing it; the next process on the same file replays it to a
// client resuming from before, once, then goes on live.
func TestOutboxCrashEmbedded(t *testing.T) {
	t.Parallel()
	c := proctest.New(t, proctest.Options{NoRedis: true, DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "taskpulse.db")})
	c.Users("alice")
	first := c.Start("1", nil)
	s := first.Subscribe("alice", taskQ, nil)
	createTask(first, "alice", "before", "", "")
	cursor := want(t, s, "TASK_CREATED", "before").Cursor
	s.Conn.Close()
	first.Stop()

	victim := c.Start("2", map[string]string{proctest.FailpointsVar: "after-commit=kill"})
	if err := tryCreateTask(victim, "alice", "committed, then killed", ""); err == nil {
		t.Fatalf("createTask answered: the failpoint did not fire before the response (a binary built without -tags failpoints?)")
	}
	crashed(t, victim)

	third := c.Start("3", nil)
	resumed := third.Subscribe("alice", taskQ, after(cursor, nil))
	ev := want(t, resumed, "TASK_CREATED", "committed, then killed")
	gapless(t, resumed.Who(), []event{{Cursor: cursor}, ev})
	createTask(third, "alice", "live", "", "")
	want(t, resumed, "TASK_CREATED", "live")
	resumed.Nothing(proctest.Quiet)
}
