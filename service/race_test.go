package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
)

// The races of issue 7, tried as an attacker would: each change decides
// and commits in one unit of work, so the log never shows a change that a
// decision committed before it should have refused.

const raceRounds = 30

// TestRemovedMemberChangesNothingAfterRemoval: bob updates a task of a
// project in a loop while alice removes him from it. Each of his updates
// is either FORBIDDEN or committed before the removal: its TASK_UPDATED
// precedes PROJECT_MEMBER_REMOVED in the log, never follows it.
func TestRemovedMemberChangesNothingAfterRemoval(t *testing.T) {
	onBothStores(t, func(t *testing.T, f *fixture) {
		f.teamOf("alice", "bob")
		for round := range raceRounds {
			p, err := f.svc.CreateProject(as("alice"), fmt.Sprint("P", round), "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.AddProjectMember(as("alice"), p.ID, "bob"); err != nil {
				t.Fatal(err)
			}
			task, err := f.svc.CreateTask(as("alice"), service.TaskInput{Title: "T", ProjectID: p.ID})
			if err != nil {
				t.Fatal(err)
			}
			f.take()

			const writers = 2
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				updated int
				refused int
			)
			start := make(chan struct{})
			for w := range writers {
				wg.Go(func() {
					<-start
					for i := range 500 {
						title := fmt.Sprintf("w%d-%d", w, i)
						_, err := f.svc.UpdateTask(as("bob"), task.ID, service.TaskChange{Title: &title})
						mu.Lock()
						switch {
						case err == nil:
							updated++
						case errs.Is(err, errs.Forbidden):
							refused++
						default:
							t.Errorf("round %d: update: %v", round, err)
						}
						mu.Unlock()
						if err != nil {
							return
						}
						// A breath between updates, as a client's round trip
						// gives: PostgreSQL grants a shared row lock past a
						// waiting DELETE, so updates that overlap without end
						// would hold the removal off until they stop.
						time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
					}
					t.Errorf("round %d: bob was never refused", round)
				})
			}
			wg.Go(func() {
				<-start
				time.Sleep(time.Duration(round%5) * time.Millisecond) // removals land at different points
				if _, _, err := f.svc.RemoveProjectMember(as("alice"), p.ID, "bob"); err != nil {
					t.Errorf("round %d: remove: %v", round, err)
				}
			})
			close(start)
			wg.Wait()

			removedAt, updates := uint64(0), 0
			for _, ev := range f.take() {
				switch ev.Type {
				case service.ProjectMemberRemoved:
					removedAt = ev.Seq
				case service.TaskUpdated:
					updates++
					if removedAt != 0 {
						t.Fatalf("round %d: TASK_UPDATED at %d after PROJECT_MEMBER_REMOVED at %d", round, ev.Seq, removedAt)
					}
				default:
					t.Fatalf("round %d: unexpected %s", round, ev.Type)
				}
			}
			if removedAt == 0 || updates != updated || refused != writers {
				t.Fatalf("round %d: removal at %d, %d updates logged, %d committed, %d writers refused (want %d)",
					round, removedAt, updates, updated, refused, writers)
			}
		}
	})
}

// TestConcurrentReassignmentsNotifyThePreviousAssignee: several users
// reassign one task at once. In log order, each TASK_ASSIGNED reaches the
// assignee the task had just before it (the one the previous entry set),
// and the task's version grows by one per entry: each reassignment decided
// on the state it changed.
func TestConcurrentReassignmentsNotifyThePreviousAssignee(t *testing.T) {
	onBothStores(t, func(t *testing.T, f *fixture) {
		users := []string{"bob", "carol", "dave", "erin"}
		for _, u := range users[2:] {
			if _, err := f.svc.CreateUser(context.Background(), store.User{ID: u, Name: u}); err != nil {
				t.Fatal(err)
			}
		}
		f.teamOf("alice", users...)
		p, err := f.svc.CreateProject(as("alice"), "P", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if _, err := f.svc.AddProjectMember(as("alice"), p.ID, u); err != nil {
				t.Fatal(err)
			}
		}
		for round := range raceRounds {
			task, err := f.svc.CreateTask(as("alice"), service.TaskInput{Title: "T", ProjectID: p.ID, AssignedTo: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			f.take()
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, by := range users {
				wg.Go(func() {
					<-start
					for _, to := range users { // each member assigns it to everyone in turn
						if _, err := f.svc.AssignTask(as(by), task.ID, to); err != nil {
							t.Errorf("round %d: %s assigns to %s: %v", round, by, to, err)
						}
					}
				})
			}
			close(start)
			wg.Wait()

			prev, version := "alice", task.Version
			evs := f.take()
			if len(evs) != len(users)*len(users) {
				t.Fatalf("round %d: %d events, want %d", round, len(evs), len(users)*len(users))
			}
			for _, ev := range evs {
				d := eventData(t, ev)
				if ev.Type != service.TaskAssigned || d.Task.ID != task.ID {
					t.Fatalf("round %d: unexpected %s", round, ev.Type)
				}
				if d.Task.Version != version+1 {
					t.Fatalf("round %d: entry %d has version %d after %d", round, ev.Seq, d.Task.Version, version)
				}
				version = d.Task.Version
				now := d.Task.AssignedTo
				if now != prev && !slices.Contains(ev.Rooms, realtime.RoomUser(prev)) {
					t.Fatalf("round %d: reassignment %s → %s at %d misses the previous assignee: rooms %v", round, prev, now, ev.Seq, ev.Rooms)
				}
				prev = now
			}
		}
	})
}

func eventData(t *testing.T, ev *realtime.Event) *service.EventData {
	t.Helper()
	v, err := ev.Decoded(service.DecodeEventData)
	if err != nil {
		t.Fatalf("event %d (%s): %v", ev.Seq, ev.Type, err)
	}
	return v.(*service.EventData)
}
