package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/store"
)

// What SQLite gets from its single writer, PostgreSQL gets from statements,
// transactions and row locks (see the package doc): these tests race the
// writes whose correctness depends on them.

// Two stores on one database stand for two instances: their writers run
// at once, and nothing is lost or doubled.
func TestTwoStoresOnOneDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	stores := []*Store{openT(t, url), openT(t, url)}
	ctx := t.Context()
	if _, err := stores[0].CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	hot, err := stores[0].CreateTask(ctx, store.Task{Title: "hot", UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 4, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[g%2]
			for i := range each {
				if _, err := s.CreateTask(ctx, store.Task{Title: fmt.Sprint(g, "-", i), UserID: "alice"}); err != nil {
					t.Errorf("goroutine %d: CreateTask: %v", g, err)
					return
				}
				if _, err := s.UpdateTask(ctx, hot.ID, store.TaskPatch{Title: ptr(fmt.Sprint(g, "-", i))}); err != nil {
					t.Errorf("goroutine %d: UpdateTask: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ts, err := stores[1].VisibleTasks(ctx, "alice", store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1+goroutines*each {
		t.Errorf("%d tasks, want %d", len(ts), 1+goroutines*each)
	}
	got, err := stores[0].Task(ctx, hot.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(1 + goroutines*each); got.Version != want {
		t.Errorf("hot task at version %d after %d updates from two stores, want %d", got.Version, goroutines*each, want)
	}
}

// A project deleted while tasks and members are being added to it: every
// add either lands before the delete (and the delete returns and removes
// its task) or finds the project gone (NotFound). Nothing is left behind,
// and no add fails any other way.
func TestDeleteProjectRacesAdds(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	for _, id := range []string{"alice", "bob"} {
		if _, err := s.CreateUser(ctx, store.User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 20 {
		p, err := s.CreateProject(ctx, store.Project{Name: "P", OwnerID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		created := map[string]bool{}
		var deleted []store.Task
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 5 {
					var err error
					if w == 0 {
						_, err = s.AddProjectMember(ctx, p.ID, "bob")
					} else {
						var tk store.Task
						tk, err = s.CreateTask(ctx, store.Task{Title: "t", ProjectID: p.ID, UserID: "alice"})
						if err == nil {
							mu.Lock()
							created[tk.ID] = true
							mu.Unlock()
						}
					}
					if err != nil && errs.CodeOf(err) != errs.NotFound {
						t.Errorf("round %d: add beside DeleteProject: %v", round, err)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var err error
			if _, deleted, err = s.DeleteProject(ctx, p.ID); err != nil {
				t.Errorf("round %d: DeleteProject: %v", round, err)
			}
		}()
		close(start)
		wg.Wait()
		if len(deleted) != len(created) {
			t.Errorf("round %d: %d tasks created, DeleteProject returned %d", round, len(created), len(deleted))
		}
		for _, tk := range deleted {
			if !created[tk.ID] {
				t.Errorf("round %d: DeleteProject returned %s, which no CreateTask returned", round, tk.ID)
			}
		}
		var left int
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tasks WHERE project_id = $1)
			+ (SELECT count(*) FROM project_members WHERE project_id = $1)`, p.ID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Errorf("round %d: %d rows of the deleted project remain", round, left)
		}
	}
}

// The store's methods run unchanged inside a caller's transaction (db on a
// pgx.Tx): what they did commits or rolls back with it. This is the seam a
// unit of work (the outbox) builds on.
func TestMethodsRunInCallersTransaction(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		in := db{q: tx}
		p, err := in.CreateProject(ctx, store.Project{Name: "P", OwnerID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		tk, err := in.CreateTask(ctx, store.Task{Title: "T", ProjectID: p.ID, UserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := in.ProjectTasks(ctx, p.ID, store.Page{Limit: 10}); err != nil || len(got) != 1 {
			t.Fatalf("inside the transaction: %v, %v", got, err)
		}
		// Outside it, nothing yet.
		if _, err := s.Project(ctx, p.ID); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("uncommitted project visible outside: %v", err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Task(ctx, tk.ID)
		if commit && err != nil {
			t.Errorf("after commit: %v", err)
		}
		if !commit && errs.CodeOf(err) != errs.NotFound {
			t.Errorf("after rollback: got %v, want NotFound", err)
		}
	}
}

// A write waiting for a row lock that a transaction elsewhere holds gives
// up after lock_timeout (5s unless the URL says otherwise) instead of
// hanging, and succeeds once the lock is free.
func TestLockWaitIsBounded(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	if got := showSetting(t, openT(t, url), "lock_timeout"); got != defaultLockTimeout {
		t.Errorf("lock_timeout %q by default, want %q", got, defaultLockTimeout)
	}
	s := openT(t, withParam(t, url, "lock_timeout", "200ms"))
	ctx := t.Context()
	for _, id := range []string{"alice", "bob"} {
		if _, err := s.CreateUser(ctx, store.User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateTeam(ctx, store.Team{ID: "team_t", Name: "T", CreatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	// Another session holds the team's row, as a forgotten psql session would.
	other, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, `SELECT 1 FROM teams WHERE id = 'team_t' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = s.AddTeamMember(ctx, "team_t", "bob")
	if err == nil || time.Since(began) > 3*time.Second {
		t.Errorf("AddTeamMember behind a held lock: %v after %v, want an error after about 200ms", err, time.Since(began))
	}
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if added, err := s.AddTeamMember(ctx, "team_t", "bob"); err != nil || !added {
		t.Errorf("AddTeamMember once the lock is free: %v, %v", added, err)
	}
}

func showSetting(t *testing.T, s *Store, name string) string {
	t.Helper()
	var v string
	if err := s.pool.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
