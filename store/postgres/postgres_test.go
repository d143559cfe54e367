package postgres

import (
	"context"
	"errors"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openT opens a store on url and closes it when t ends.
func openT(t testing.TB, url string, opts ...Options) *Store {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := Open(context.Background(), url, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore opens a store on a database of its own.
func newStore(t testing.TB) *Store { return openT(t, pgtest.NewDatabase(t)) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	missing := pgtest.NewDatabase(t) + "_missing"
	tests := []struct {
		name, url string
		want      []string // all in the message
	}{
		{"not a URL", "postgres://db:5432/%zz", []string{"postgres:"}},
		{"nobody listening", "postgres://app:hunter2@127.0.0.1:1/tp?connect_timeout=2", []string{"127.0.0.1", "tp"}},
		{"no such database", missing, []string{"_missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.url, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.url)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// Options.MaxConns sizes the pool; without it the URL's pool_max_conns
// holds.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	if got := openT(t, url, Options{MaxConns: 3}).pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns 3: pool of %d", got)
	}
	if got := openT(t, withParam(t, url, "pool_max_conns", "5"), Options{}).pool.Config().MaxConns; got != 5 {
		t.Errorf("pool_max_conns=5: pool of %d", got)
	}
}

// Text PostgreSQL cannot hold (a NUL character, bytes that are not UTF-8)
// is the client's mistake, not an internal error, whether stored or looked
// up.
func TestTextPostgresCannotHold(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"task title with NUL": func() error {
			_, err := s.CreateTask(ctx, store.Task{Title: "a\x00b", UserID: "alice"})
			return err
		},
		"user name not UTF-8": func() error {
			_, err := s.CreateUser(ctx, store.User{ID: "bob", Name: "\xff\xfe"})
			return err
		},
		"lookup by an id with NUL": func() error {
			_, err := s.Task(ctx, "tsk_\x00")
			return err
		},
		"membership of an id with NUL": func() error {
			_, err := s.IsProjectMember(ctx, "prj\x00", "alice")
			return err
		},
	}
	for name, call := range calls {
		if err := call(); errs.CodeOf(err) != errs.BadUserInput {
			t.Errorf("%s: got %v (code %s), want BAD_USER_INPUT", name, err, errs.CodeOf(err))
		}
	}
}

// The schema enforces references on its own, not only through the store's
// checks: a row written around the store cannot dangle.
func TestForeignKeysEnforced(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.pool.Exec(t.Context(), `INSERT INTO tasks
		(id, title, status, project_id, user_id, version, created_at, updated_at)
		VALUES ('tsk_x', 'x', 'TODO', 'prj_missing', 'nobody', 1, now(), now())`)
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "23503" {
		t.Errorf("insert of a dangling task: got %v, want a foreign key violation (23503)", err)
	}
}

// The columns hold what the domain holds: instants with a time zone, at
// microseconds, and booleans.
func TestColumnTypes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rows, err := s.pool.Query(t.Context(), `SELECT table_name, column_name, data_type, COALESCE(datetime_precision, -1)
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'
			AND (column_name LIKE '%\_at' OR data_type IN ('boolean', 'integer', 'smallint')
				OR column_name IN ('admin', 'disabled', 'is_read'))`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table, column, typ string
		var precision int
		if err := rows.Scan(&table, &column, &typ, &precision); err != nil {
			t.Fatal(err)
		}
		n++
		switch {
		case strings.HasSuffix(column, "_at"):
			if typ != "timestamp with time zone" || precision != 6 {
				t.Errorf("%s.%s is %s(%d), want timestamp with time zone(6)", table, column, typ, precision)
			}
		case typ != "boolean":
			t.Errorf("%s.%s is %s, want boolean", table, column, typ)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 14 { // 10 instants, 4 flags
		t.Errorf("checked %d columns, want 14", n)
	}

	// Ids and references sort as bytes, as in SQLite, whatever the
	// database's locale: listings ordered by id agree on both adapters.
	var ids, c int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE collation_name = 'C')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type = 'text'
			AND (column_name IN ('id', 'created_by', 'invited_by', 'assigned_to') OR column_name LIKE '%\_id')`).
		Scan(&ids, &c); err != nil {
		t.Fatal(err)
	}
	if ids != 20 || c != ids {
		t.Errorf("%d of %d id columns sort as bytes (COLLATE \"C\"), want all 20", c, ids)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	revoked := time.Date(2025, 1, 2, 3, 4, 5, 678912000, time.UTC)
	u, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Alice", Email: "a@x", Admin: true, SessionsRevokedAt: revoked})
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

	s = openT(t, url)
	if got, err := s.User(ctx, "alice"); err != nil || got != u {
		t.Errorf("user after reopen: %+v, %v; want %+v", got, err, u)
	}
	if got, err := s.Project(ctx, p.ID); err != nil || got != p {
		t.Errorf("project after reopen: %+v, %v; want %+v", got, err, p)
	}
	if got, err := s.Task(ctx, tk.ID); err != nil || got != tk {
		t.Errorf("task after reopen: %+v, %v; want %+v", got, err, tk)
	}
	if got, err := s.SetSettingIfAbsent(ctx, "jwt_key", "other"); err != nil || got != key {
		t.Errorf("setting after reopen: %q, %v; want %q", got, err, key)
	}
}

func ptr[T any](v T) *T { return &v }

// withParam returns rawURL with one query parameter set.
func withParam(t *testing.T, rawURL, key, value string) string {
	t.Helper()
	u, err := neturl.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
