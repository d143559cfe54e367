package postgres

import (
	"fmt"
	"testing"

	"github.com/taskpulse/taskpulse/store"
)

// The benchmarks of store/sqlite's bench_test.go, on PostgreSQL, so the two
// adapters compare figure for figure.

// benchStore opens a store on a database of its own with one user and one
// project.
func benchStore(b *testing.B) (*Store, store.Project) {
	b.Helper()
	s := newStore(b)
	if _, err := s.CreateUser(b.Context(), store.User{ID: "alice", Name: "Alice"}); err != nil {
		b.Fatal(err)
	}
	p, err := s.CreateProject(b.Context(), store.Project{Name: "P", OwnerID: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	return s, p
}

func BenchmarkCreateTask(b *testing.B) {
	s, p := benchStore(b)
	for b.Loop() {
		if _, err := s.CreateTask(b.Context(), store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
}

// Parallel writers each use a connection of the pool; they contend only on
// the project and user rows they pin (FOR KEY SHARE, which does not block).
func BenchmarkCreateTaskParallel(b *testing.B) {
	s, p := benchStore(b)
	b.ResetTimer() // RunParallel, unlike b.Loop, times the setup too
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.CreateTask(b.Context(), store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkUpdateTask(b *testing.B) {
	s, p := benchStore(b)
	tk, err := s.CreateTask(b.Context(), store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	title := "x"
	for b.Loop() {
		if _, err := s.UpdateTask(b.Context(), tk.ID, store.TaskPatch{Title: &title}); err != nil {
			b.Fatal(err)
		}
	}
}

// Reads in parallel, over 100 visible tasks.
func BenchmarkVisibleTasksParallel(b *testing.B) {
	s, p := benchStore(b)
	for i := range 100 {
		if _, err := s.CreateTask(b.Context(), store.Task{Title: fmt.Sprint(i), ProjectID: p.ID, UserID: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer() // RunParallel, unlike b.Loop, times the setup too
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ts, err := s.VisibleTasks(b.Context(), "alice", store.Page{Limit: 100})
			if err != nil || len(ts) != 100 {
				b.Errorf("VisibleTasks: %d tasks, %v", len(ts), err)
				return
			}
		}
	})
}
