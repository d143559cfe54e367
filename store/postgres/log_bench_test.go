package postgres

import (
	"context"
	"testing"

	"github.com/taskpulse/taskpulse/store"
)

// createTaskLogged is CreateTask as the service will run it: in a unit of
// work that appends its event.
func createTaskLogged(ctx context.Context, s store.Store, p store.Project) error {
	return s.Update(ctx, func(tx store.Tx) error {
		tk, err := tx.CreateTask(ctx, store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"})
		if err != nil {
			return err
		}
		tx.Append(&store.LogEntry{Type: "taskCreated", Rooms: []string{"project:" + p.ID}, Data: []byte(`{"id":"` + tk.ID + `"}`)})
		return nil
	})
}

// Compare with BenchmarkCreateTask: the cost of the log on a write.
func BenchmarkCreateTaskLogged(b *testing.B) {
	s, p := benchStore(b)
	for b.Loop() {
		if err := createTaskLogged(b.Context(), s, p); err != nil {
			b.Fatal(err)
		}
	}
}

// Parallel units of work take turns on the log_head row from their append
// to their commit only; compare with BenchmarkCreateTaskParallel.
func BenchmarkCreateTaskLoggedParallel(b *testing.B) {
	s, p := benchStore(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := createTaskLogged(b.Context(), s, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mutations/s")
}
