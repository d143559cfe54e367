package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/taskpulse/taskpulse/internal/proctest"
)

// TestConcurrentWritersOneOrder: alice writes through A and bob through
// B at once, 100 renames each of one task. Every subscriber, on either
// instance, sees the same 200 events in the same order — the database's
// commit order — gapless, each once, each writer's renames in the order
// it made them; and the task ends as the last event says.
func TestConcurrentWritersOneOrder(t *testing.T) {
	t.Parallel()
	const perWriter = 100
	_, a, b := cluster2(t, nil, "alice", "bob")
	createTeam(a, "alice", "T", "bob") // so alice may add bob to P
	p := createProject(a, "alice", "P")
	addMember(a, "alice", p, "bob")
	task := createTask(a, "alice", "start", p, "")

	subs := []*proctest.Sub{
		a.Subscribe("alice", projectQ, map[string]any{"p": p}),
		b.Subscribe("alice", projectQ, map[string]any{"p": p}),
		a.Subscribe("bob", taskQ, nil),
		b.Subscribe("bob", taskQ, nil),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, w := range []struct {
		i    *proctest.Instance
		user string
	}{{a, "alice"}, {b, "bob"}} {
		wg.Go(func() {
			for n := range perWriter {
				if err := retitle(w.i, w.user, task, fmt.Sprintf("%s-%03d", w.user, n)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var seen [][]event
	for _, s := range subs {
		evs := collect(t, s, 2*perWriter)
		gapless(t, s.Who(), evs)
		seen = append(seen, evs)
	}
	for i, s := range subs[1:] {
		sameEvents(t, subs[0].Who(), seen[0], s.Who(), seen[i+1])
	}
	for _, user := range []string{"alice", "bob"} {
		var mine []string
		for _, ev := range seen[0] {
			if strings.HasPrefix(ev.title(), user+"-") {
				mine = append(mine, ev.title())
			}
		}
		if len(mine) != perWriter || !slices.IsSorted(mine) {
			t.Fatalf("%s's renames as seen: %d, in order %v; want %d in the order made", user, len(mine), slices.IsSorted(mine), perWriter)
		}
	}
	last := seen[0][len(seen[0])-1].title()
	var got struct{ Task struct{ Title string } }
	b.Do("bob", `query($id: ID!) { task(id: $id) { title } }`, map[string]any{"id": task}, &got)
	if got.Task.Title != last {
		t.Fatalf("the task is %q, but the last event says %q: the log's order is not the commit order", got.Task.Title, last)
	}
	for _, s := range subs {
		s.Nothing(proctest.Quiet)
	}
}

// TestRemovalRacingChanges: alice removes bob from P through A while bob
// and alice rename P's task through B. Whatever the interleaving, on
// every instance: bob's change committed before his removal is in the
// log before PROJECT_MEMBER_REMOVED, after it none (refused FORBIDDEN);
// bob receives every change before his removal and none after it.
// Several rounds, the removal at a random point of the writes.
func TestRemovalRacingChanges(t *testing.T) {
	t.Parallel()
	const rounds, writes = 6, 30
	_, a, b := cluster2(t, nil, "alice", "bob")
	createTeam(a, "alice", "T", "bob") // so alice may add bob to her projects
	for r := range rounds {
		p := createProject(a, "alice", fmt.Sprintf("P%d", r))
		addMember(a, "alice", p, "bob")
		task := createTask(a, "alice", "start", p, "") // alice's: bob sees it only as a member

		watch := map[string]*proctest.Sub{}
		for _, i := range []*proctest.Instance{a, b} {
			watch["alice@"+i.Name] = i.Subscribe("alice", projectQ, map[string]any{"p": p})
			watch["bob-p@"+i.Name] = i.Subscribe("bob", projectQ, map[string]any{"p": p})
			watch["bob-t@"+i.Name] = i.Subscribe("bob", taskQ, nil)
		}

		removeAt := rand.IntN(writes)
		committed := map[string]bool{} // bob's and alice's renames the server accepted
		var mu sync.Mutex
		var wg sync.WaitGroup
		progress := make(chan struct{}, 2*writes)
		fail := make(chan error, 3)
		for _, user := range []string{"bob", "alice"} {
			wg.Go(func() {
				for n := range writes {
					title := fmt.Sprintf("%s-%d-%02d", user, r, n)
					err := retitle(b, user, task, title)
					switch {
					case err == nil:
						mu.Lock()
						committed[title] = true
						mu.Unlock()
					case user == "bob" && proctest.CodeOf(err) == "FORBIDDEN":
					default:
						fail <- err
						return
					}
					progress <- struct{}{}
				}
			})
		}
		wg.Go(func() {
			for range removeAt {
				<-progress
			}
			if err := a.Try("alice", `mutation($p: ID!) { removeProjectMember(projectId: $p, userId: "bob") { id } }`, map[string]any{"p": p}, nil); err != nil {
				fail <- err
			}
		})
		wg.Wait()
		close(fail)
		for err := range fail {
			t.Fatalf("round %d: %v", r, err)
		}

		// alice's view: every accepted rename and the removal, on both
		// instances alike.
		full := collect(t, watch["alice@A"], len(committed)+1)
		sameEvents(t, "alice@A", full, "alice@B", collect(t, watch["alice@B"], len(full)))
		gapless(t, "alice@A", full)
		removed := slices.IndexFunc(full, func(ev event) bool { return ev.Type == "PROJECT_MEMBER_REMOVED" })
		if removed < 0 || full[removed].Member == nil || full[removed].Member.ID != "bob" {
			t.Fatalf("round %d: no PROJECT_MEMBER_REMOVED of bob in %v", r, full)
		}
		for i, ev := range full {
			if i != removed && (ev.Type != "TASK_UPDATED" || !committed[ev.title()]) {
				t.Fatalf("round %d: event %d %s is not an accepted rename", r, i, ev)
			}
			if i > removed && strings.HasPrefix(ev.title(), "bob-") {
				t.Fatalf("round %d: bob's %s committed after his removal (event %d, removal %d)", r, ev, i, removed)
			}
		}
		before := full[:removed]
		for _, i := range []string{"A", "B"} {
			// projectUpdates: the changes before, the removal, then FORBIDDEN.
			s := watch["bob-p@"+i]
			sameEvents(t, "alice@A", full[:removed+1], s.Who(), collect(t, s, removed+1))
			if e := s.Error(); e.Code() != "FORBIDDEN" {
				t.Fatalf("round %d: %s after the removal: %s (%s), want FORBIDDEN", r, s.Who(), e.Message, e.Code())
			}
			// taskUpdates: the changes before the removal, nothing after.
			s = watch["bob-t@"+i]
			sameEvents(t, "alice@A (before the removal)", before, s.Who(), collect(t, s, len(before)))
			s.Nothing(proctest.Quiet)
		}
		for _, s := range watch {
			s.Conn.Close()
		}
	}
}
