package sqlite

import (
	"fmt"
	"testing"

	"github.com/taskpulse/taskpulse/store"
)

// unpagedVisibleTasksQuery is the listing before paging: every visible task
// in one read, for comparison.
const unpagedVisibleTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
	WHERE t.user_id = ? OR t.assigned_to = ?
		OR t.project_id IN (SELECT m.project_id FROM project_members m WHERE m.user_id = ?)
	ORDER BY t.created_at, t.id`

// BenchmarkVisibleTasksPage: a page of VisibleTasks costs about the same
// whether the user sees 2,000 tasks or 20,000 (each arm stops after a
// page), while the unpaged listing grows with them. Tasks are a quarter
// owned, a quarter assigned and half spread over 10 projects.
func BenchmarkVisibleTasksPage(b *testing.B) {
	for _, n := range []int{2_000, 20_000} {
		s := visibleBenchStore(b, n)
		deep := fmt.Sprintf("tsk_%08d", n/2) // a page from the middle
		b.Run(fmt.Sprint(n, "/first-page"), func(b *testing.B) {
			for b.Loop() {
				if ts, err := s.VisibleTasks(b.Context(), "alice", store.Page{Limit: 50}); err != nil || len(ts) != 50 {
					b.Fatalf("%d tasks, %v", len(ts), err)
				}
			}
		})
		b.Run(fmt.Sprint(n, "/middle-page"), func(b *testing.B) {
			for b.Loop() {
				if ts, err := s.VisibleTasks(b.Context(), "alice", store.Page{After: deep, Limit: 50}); err != nil || len(ts) != 50 {
					b.Fatalf("%d tasks, %v", len(ts), err)
				}
			}
		})
		b.Run(fmt.Sprint(n, "/unpaged"), func(b *testing.B) {
			for b.Loop() {
				rows, err := s.r.QueryContext(b.Context(), unpagedVisibleTasksQuery, "alice", "alice", "alice")
				if err != nil {
					b.Fatal(err)
				}
				if ts, err := collect(rows, scanTask); err != nil || len(ts) != n {
					b.Fatalf("%d tasks, %v", len(ts), err)
				}
			}
		})
	}
}

// visibleBenchStore stores n tasks alice sees, in one transaction.
func visibleBenchStore(b *testing.B, n int) *Store {
	b.Helper()
	s, _ := benchStore(b, "")
	ctx := b.Context()
	if _, err := s.CreateUser(ctx, store.User{ID: "bob", Name: "Bob"}); err != nil {
		b.Fatal(err)
	}
	var projects []string
	for i := range 10 {
		p, err := s.CreateProject(ctx, store.Project{ID: fmt.Sprint("prj_", i), Name: "P", OwnerID: "bob"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.AddProjectMember(ctx, p.ID, "alice"); err != nil {
			b.Fatal(err)
		}
		projects = append(projects, p.ID)
	}
	err := s.write(ctx, func(tx queryer) error {
		for i := range n {
			owner, project, assignee := "alice", any(nil), any(nil)
			switch i % 4 {
			case 1:
				owner, assignee = "bob", "alice"
			case 2, 3:
				owner, project = "bob", projects[i%10]
			}
			if _, err := tx.ExecContext(ctx, insertTaskQuery, fmt.Sprintf("tsk_%08d", i), "t", "", "TODO",
				project, owner, assignee, 1, int64(i), int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}
