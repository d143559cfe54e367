package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/taskpulse/taskpulse/store"
)

// BenchMutations measures units of work per second as the service runs a
// task change: in one Update, the membership check, UpdateTask and (with
// logged) one appended entry, by writers concurrent goroutines, each on a
// task of its own in one project, so they contend only on what the
// adapter serializes (with logged, the log's head). s must be a new store;
// the figure is reported as mutations/s.
func BenchMutations(b *testing.B, s store.Store, writers int, logged bool) {
	ctx := b.Context()
	if _, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
		b.Fatal(err)
	}
	p, err := s.CreateProject(ctx, store.Project{Name: "P", OwnerID: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	tasks := make([]string, writers)
	for w := range tasks {
		tk, err := s.CreateTask(ctx, store.Task{Title: fmt.Sprint("t", w), ProjectID: p.ID, UserID: "alice"})
		if err != nil {
			b.Fatal(err)
		}
		tasks[w] = tk.ID
	}
	mutate := func(ctx context.Context, task string, i int64) error {
		return s.Update(ctx, func(tx store.Tx) error {
			ok, err := tx.IsProjectMember(ctx, p.ID, "alice")
			if err != nil || !ok {
				return fmt.Errorf("membership check: %v, %w", ok, err)
			}
			title := fmt.Sprint("title ", i)
			if _, err := tx.UpdateTask(ctx, task, store.TaskPatch{Title: &title}); err != nil {
				return err
			}
			if logged {
				tx.Append(&store.LogEntry{Type: "TASK_UPDATED", Rooms: []string{"project:" + p.ID},
					Data: []byte(`{"id":"` + task + `","title":"` + title + `"}`)})
			}
			return nil
		})
	}
	var next atomic.Int64
	n := int64(b.N)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				if err := mutate(ctx, tasks[w], i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mutations/s")
}

// CreateTaskLogged is CreateTask as the service runs it: in a unit of work
// that appends its event (the benchmarks' measure of the log's cost on a
// write).
func CreateTaskLogged(ctx context.Context, s store.Store, p store.Project) error {
	return s.Update(ctx, func(tx store.Tx) error {
		tk, err := tx.CreateTask(ctx, store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"})
		if err != nil {
			return err
		}
		tx.Append(&store.LogEntry{Type: "taskCreated", Rooms: []string{"project:" + p.ID}, Data: []byte(`{"id":"` + tk.ID + `"}`)})
		return nil
	})
}
