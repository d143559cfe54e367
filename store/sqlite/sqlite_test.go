package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openT opens a store at dsn and closes it when t ends. It also fails t if
// a statement ran without being prepared: every query the store runs must
// be in allQueries (or readQueries, for the reader pool).
func openT(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		for _, c := range []*stmtCache{s.wc, s.rc} {
			for _, q := range c.missedQueries() {
				t.Errorf("statement ran unprepared; add it to the query lists: %s", q)
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContractFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, filepath.Join(t.TempDir(), "taskpulse.db"))
	})
}

func TestContractMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openT(t, MemoryDSN) })
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, dsn, want string
	}{
		{"empty", "", "empty database path"},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "x.db"), filepath.Join(dir, "no")},
		{"a directory", dir, dir},
		{"NUL byte", "a\x00b.db", "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.dsn)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.dsn)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q): error %q does not mention %q", tc.dsn, err, tc.want)
			}
		})
	}
}

// Paths are taken literally: characters that mean something in a URI are
// part of the file name.
func TestOpenPathWithURICharacters(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "odd name?mode=ro#frag%20.db")
	s := openT(t, name)
	if _, err := s.CreateUser(t.Context(), store.User{ID: "alice", Name: "Alice"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := os.Stat(name); err != nil {
		t.Errorf("database file not at the literal path: %v", err)
	}
}

// pragma reads one pragma's value on conn.
func pragma(t *testing.T, conn *sql.Conn, name string) string {
	t.Helper()
	var v string
	if err := conn.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// conns checks out n distinct connections of db at once, so that settings
// are checked on every connection a pool opens, not just the first.
func conns(t *testing.T, db *sql.DB, n int) []*sql.Conn {
	t.Helper()
	cs := make([]*sql.Conn, n)
	for i := range cs {
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		cs[i] = c
	}
	t.Cleanup(func() {
		for _, c := range cs {
			_ = c.Close()
		}
	})
	return cs
}

func TestPragmas(t *testing.T) {
	file := openT(t, filepath.Join(t.TempDir(), "p.db"))
	mem := openT(t, MemoryDSN)
	busy := fmt.Sprint(busyTimeout.Milliseconds())
	tests := []struct {
		name string
		db   *sql.DB
		n    int
		want map[string]string
	}{
		{"file writer", file.w, 1, map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": busy, "synchronous": "1", "query_only": "0"}},
		{"file readers", file.r, file.r.Stats().MaxOpenConnections, map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": busy, "synchronous": "1", "query_only": "1"}},
		{"memory", mem.w, 1, map[string]string{
			"journal_mode": "memory", "foreign_keys": "1", "busy_timeout": busy, "query_only": "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, c := range conns(t, tc.db, tc.n) {
				for name, want := range tc.want {
					if got := pragma(t, c, name); got != want {
						t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, name, got, want)
					}
				}
			}
		})
	}
	if mem.r != mem.w {
		t.Errorf(":memory: has a separate reader pool; readers would see another database")
	}
	if got := file.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections, want 1", got)
	}
}

// The schema enforces references on its own, not only through the store's
// checks: a row written around the store cannot dangle.
func TestForeignKeysEnforced(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "fk.db"))
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO tasks
		(id, title, status, project_id, user_id, version, created_at, updated_at)
		VALUES ('tsk_x', 'x', 'TODO', 'prj_missing', 'nobody', 1, 0, 0)`)
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Errorf("insert of a dangling task: got %v, want a FOREIGN KEY constraint error", err)
	}
	_, err = s.r.ExecContext(t.Context(), `INSERT INTO settings (key, value) VALUES ('k', 'v')`)
	if err == nil {
		t.Errorf("a reader connection wrote to the database")
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keep.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	u, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice", Email: "a@x", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProject(ctx, store.Project{Name: "P", OwnerID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := s.CreateTask(ctx, store.Task{Title: "T", ProjectID: p.ID, UserID: "alice", AssignedTo: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = s.UpdateTask(ctx, tk.ID, store.TaskPatch{Status: ptr(store.StatusDone)}); err != nil {
		t.Fatal(err)
	}
	key, err := s.SetSettingIfAbsent(ctx, "jwt_key", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openT(t, path)
	if got, err := s.User(ctx, "alice"); err != nil || got != u {
		t.Errorf("user after reopen: %+v, %v; want %+v", got, err, u)
	}
	if got, err := s.Project(ctx, p.ID); err != nil || got != p {
		t.Errorf("project after reopen: %+v, %v; want %+v", got, err, p)
	}
	if got, err := s.Task(ctx, tk.ID); err != nil || got != tk {
		t.Errorf("task after reopen: %+v, %v; want %+v", got, err, tk)
	}
	if ok, err := s.IsProjectMember(ctx, p.ID, "alice"); err != nil || !ok {
		t.Errorf("membership after reopen: %v, %v", ok, err)
	}
	if got, err := s.SetSettingIfAbsent(ctx, "jwt_key", "other"); err != nil || got != key {
		t.Errorf("setting after reopen: %q, %v; want %q", got, err, key)
	}
}

// In WAL mode readers neither wait for a write transaction nor see it
// before it commits.
func TestReadersRunDuringWrite(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "wal.db"))
	ctx := t.Context()
	if _, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, insertUserQuery, "bob", "Bob", "", false, 0, false, nil, nil); err != nil {
		t.Fatal(err)
	}

	// The deadline only turns a regression (readers blocked) into a failure
	// instead of a hang.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.User(rctx, "alice"); err != nil {
		t.Errorf("read during a write transaction: %v", err)
	}
	if _, err := s.User(rctx, "bob"); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("uncommitted user visible to a reader: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User(rctx, "bob"); err != nil {
		t.Errorf("committed user not visible: %v", err)
	}
}

// A writer waiting for the write connection gives up when its context
// ends, instead of hanging.
func TestWriteWaitHonoursContext(t *testing.T) {
	for _, dsn := range []string{filepath.Join(t.TempDir(), "ctx.db"), MemoryDSN} {
		s := openT(t, dsn)
		tx, err := s.w.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		_, err = s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: CreateUser while the writer is busy: got %v, want a deadline error", dsn, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(t.Context(), store.User{ID: "alice", Name: "Alice"}); err != nil {
			t.Errorf("%s: CreateUser once the writer is free: %v", dsn, err)
		}
	}
}

func TestMemoryStoresAreSeparate(t *testing.T) {
	a, b := openT(t, MemoryDSN), openT(t, MemoryDSN)
	if _, err := a.CreateUser(t.Context(), store.User{ID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.User(t.Context(), "alice"); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("second in-memory store sees the first's user: %v", err)
	}
}

// Two stores on one file stand for two processes (a server and the
// `taskpulse user add` command): BEGIN IMMEDIATE and busy_timeout make their
// writers take turns instead of failing with SQLITE_BUSY.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := []*Store{openT(t, path), openT(t, path)}
	ctx := t.Context()
	if _, err := stores[0].CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
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
				tk, err := s.CreateTask(ctx, store.Task{Title: fmt.Sprint(g, "-", i), UserID: "alice"})
				if err != nil {
					t.Errorf("goroutine %d: CreateTask: %v", g, err)
					return
				}
				if _, err := s.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr("done")}); err != nil {
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
	if len(ts) != goroutines*each {
		t.Errorf("%d tasks, want %d", len(ts), goroutines*each)
	}
}

// Every listing query reaches its rows through an index: no full scan of a
// table, whatever its size.
func TestQueriesUseIndexes(t *testing.T) {
	// Scans a paged query may show: not of tables, but of its one-row key
	// (k) and of the page-sized arms of VisibleTasks.
	pageSteps := map[string]bool{"SCAN k": true, "SCAN owned": true, "SCAN assigned": true, "SCAN shared": true}
	s := openT(t, filepath.Join(t.TempDir(), "plan.db"))
	tests := []struct {
		name    string
		query   string
		args    int
		indexes []string
	}{
		{"TeamMembers", teamMembersQuery, 1, []string{"PRIMARY KEY"}},
		{"ProjectMembers", projectMembersQuery, 1, []string{"PRIMARY KEY"}},
		{"AllUserProjects", allUserProjectsQuery, 1, []string{"project_members_by_user"}},
		// Pages: each reads its index in order, from the After key on
		// (the range names the key's first column).
		{"UserTeams", userTeamsQuery, 2, []string{"team_members_by_user (user_id=?)"}},
		{"UserTeams after", userTeamsAfterQuery, 4, []string{"team_members_by_user (user_id=? AND team_id>?)"}},
		{"UserProjects", userProjectsQuery, 2, []string{"project_members_by_user (user_id=?)"}},
		{"UserProjects after", userProjectsAfterQuery, 4,
			[]string{"project_members_by_user (user_id=? AND project_id>?)"}},
		{"ProjectTasks", projectTasksQuery, 2, []string{"tasks_by_project (project_id=?)"}},
		{"ProjectTasks after", projectTasksAfterQuery, 4, []string{"tasks_by_project (project_id=? AND created_at>?)"}},
		{"VisibleTasks", visibleTasksQuery, 7,
			[]string{"tasks_by_owner (user_id=?)", "tasks_by_assignee (assigned_to=?)",
				"tasks_by_project (project_id=?)", "project_members_by_user"}},
		{"VisibleTasks after", visibleTasksAfterQuery, 11,
			[]string{"tasks_by_owner (user_id=? AND created_at>?)", "tasks_by_assignee (assigned_to=? AND created_at>?)",
				"tasks_by_project (project_id=? AND created_at>?)", "project_members_by_user"}},
		{"UserNotifications", notificationsQuery, 2, []string{"notifications_by_user (user_id=?)"}},
		{"UserNotifications after", notificationsAfterQuery, 4,
			[]string{"notifications_by_user (user_id=? AND created_at<?)"}},
		{"UserNotifications unread", unreadNotificationsQuery, 2, []string{"notifications_unread_by_user (user_id=?)"}},
		{"UserNotifications unread after", unreadNotificationsAfterQuery, 4,
			[]string{"notifications_unread_by_user (user_id=? AND created_at<?)"}},
		{"has visible task", hasVisibleTaskQuery, 4, []string{"project_members_by_user"}},
		{"has project task", hasProjectTaskQuery, 2, nil},
		{"has notification", hasNotificationQuery, 2, nil},
		{"SharesTeamOrProject", sharesQuery, 4, []string{"team_members_by_user", "project_members_by_user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]any, tc.args)
			for i := range args {
				args[i] = "x"
			}
			rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "VIRTUAL TABLE") &&
					step != "SCAN CONSTANT ROW" && !pageSteps[step] {
					t.Errorf("full scan %q in plan:\n%s", step, text)
				}
			}
			for _, idx := range tc.indexes {
				if !strings.Contains(text, idx) {
					t.Errorf("plan does not use %s:\n%s", idx, text)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
