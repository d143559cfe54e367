package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/taskpulse/taskpulse/store/storetest"
)

// Compare with BenchmarkCreateTask: the cost of the log on a write.
func BenchmarkCreateTaskLogged(b *testing.B) {
	s, p := benchStore(b, "")
	for b.Loop() {
		if err := storetest.CreateTaskLogged(b.Context(), s, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateTaskLoggedParallel(b *testing.B) {
	s, p := benchStore(b, "")
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
// without the entry, on a file database: the figures to compare with
// store/postgres's.
func BenchmarkMutations(b *testing.B) {
	for _, logged := range []bool{true, false} {
		for _, writers := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("writers=%d/logged=%v", writers, logged), func(b *testing.B) {
				s := openT(b, filepath.Join(b.TempDir(), "bench.db"))
				storetest.BenchMutations(b, s, writers, logged)
			})
		}
	}
}
