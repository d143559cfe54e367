package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/taskpulse/taskpulse/store"
)

// benchStore opens a file store with one user and one project.
func benchStore(b *testing.B, dsn string) (*Store, store.Project) {
	b.Helper()
	if dsn == "" {
		dsn = filepath.Join(b.TempDir(), "bench.db")
	}
	s := openT(b, dsn)
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
	for _, dsn := range []string{"", MemoryDSN} {
		name := "file"
		if dsn != "" {
			name = "memory"
		}
		b.Run(name, func(b *testing.B) {
			s, p := benchStore(b, dsn)
			for b.Loop() {
				if _, err := s.CreateTask(b.Context(), store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Parallel writers queue for the single writer connection; this measures
// that the queue costs little over serial writes.
func BenchmarkCreateTaskParallel(b *testing.B) {
	s, p := benchStore(b, "")
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
	s, p := benchStore(b, "")
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

// Reads in parallel from the reader pool, over 100 visible tasks.
func BenchmarkVisibleTasksParallel(b *testing.B) {
	s, p := benchStore(b, "")
	for i := range 100 {
		if _, err := s.CreateTask(b.Context(), store.Task{Title: fmt.Sprint(i), ProjectID: p.ID, UserID: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
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
