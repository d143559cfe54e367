package postgres

import (
	"fmt"
	"testing"

	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/store/storetest"
)

// Compare with BenchmarkCreateTask: the cost of the log on a write.
func BenchmarkCreateTaskLogged(b *testing.B) {
	s, p := benchStore(b)
	for b.Loop() {
		if err := storetest.CreateTaskLogged(b.Context(), s, p); err != nil {
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
			if err := storetest.CreateTaskLogged(b.Context(), s, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mutations/s")
}

// Units of work as the service runs a task change (check, UpdateTask, one
// entry), by 1, 4 and 16 concurrent writers on different tasks, with and
// without the entry: the cost of ordering the log by log_head's row lock.
// The pool has a connection per writer, so the writers really overlap.
func BenchmarkMutations(b *testing.B) {
	for _, logged := range []bool{true, false} {
		for _, writers := range []int{1, 4, 16} {
			name := fmt.Sprintf("writers=%d/logged=%v", writers, logged)
			b.Run(name, func(b *testing.B) {
				s := openT(b, pgtest.NewDatabase(b), Options{MaxConns: max(4, writers)})
				storetest.BenchMutations(b, s, writers, logged)
			})
		}
	}
}
