package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"

	// Registers the "sqlite" database/sql driver.
	_ "modernc.org/sqlite"
)

// MemoryDSN is the DSN of a private in-memory database (DATABASE_URL
// "sqlite::memory:"). Its data lives as long as the Store.
const MemoryDSN = ":memory:"

// busyTimeout bounds how long a connection waits for a lock another process
// holds before giving up with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // exactly one connection: the only writer
	r *sql.DB // query-only readers; the same pool as w for :memory:

	// The prepared statements of w and r (the same cache when r is w).
	wc, rc *stmtCache

	// tx is set on the Store a unit of work's Tx wraps (update.go): every
	// method then runs in that transaction.
	tx *txState

	epoch *store.EpochCache
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database named by dsn, the part of
// DATABASE_URL after "sqlite:": a file path, or ":memory:" for a private
// in-memory database. It applies any pending migrations and refuses a
// database whose schema is newer than this build (ErrSchemaTooNew).
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := openPools(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, s.w, migrationFiles); err != nil {
		_ = s.Close()
		return nil, err
	}
	// Statements are prepared against the migrated schema.
	if s.wc, err = newStmtCache(ctx, s.w, allQueries()); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.rc = s.wc
	if s.r != s.w {
		if s.rc, err = newStmtCache(ctx, s.r, readQueries()); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// readQueries are the statements that run on the reader pool.
func readQueries() []string {
	return append(existsQueries(),
		getUserQuery,
		getTeamQuery, isTeamMemberQuery, teamMembersQuery, userTeamsQuery, userTeamsAfterQuery,
		userInvitationsQuery, sharesTeamQuery,
		getProjectQuery, isProjectMemberQuery, projectMembersQuery, sharesQuery,
		userProjectsQuery, userProjectsAfterQuery, allUserProjectsQuery,
		getTaskQuery, allProjectTasksQuery, projectTasksQuery, projectTasksAfterQuery, hasProjectTaskQuery,
		visibleTasksQuery, visibleTasksAfterQuery, hasVisibleTaskQuery,
		getNotificationQuery, notificationsQuery, unreadNotificationsQuery,
		notificationsAfterQuery, unreadNotificationsAfterQuery, hasNotificationQuery,
		readLogQuery, logHeadQuery,
	)
}

// allQueries are all the store's statements; the writer runs reads too,
// inside its transactions.
func allQueries() []string {
	return append(readQueries(),
		insertUserQuery, updateUserQuery,
		insertTeamQuery, insertTeamMemberQuery,
		insertInvitationQuery, deleteInvitationQuery, deleteTeamInvitationsQuery, deleteTeamMemberQuery, otherTeamMembersQuery,
		insertProjectQuery, insertProjectMemberQuery, deleteProjectMemberQuery, updateProjectQuery, deleteProjectQuery,
		insertTaskQuery, updateTaskQuery, deleteTaskQuery,
		insertNotificationQuery, markNotificationReadQuery,
		insertSettingQuery, getSettingQuery,
		bumpLogHeadQuery, insertLogEntryQuery, trimLogByAgeQuery, trimLogByCountQuery, oldestLogSeqQuery,
	)
}

// rq runs single statements on the reader pool, or in the unit of work.
func (s *Store) rq() queryer {
	if s.tx != nil {
		return s.tx.q
	}
	return cachedDB{s.rc}
}

// openPools opens the connection pools and checks that they connect, without
// touching the schema.
func openPools(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("sqlite: empty database path (want a file path or :memory:)")
	}
	if strings.ContainsRune(dsn, 0) {
		return nil, errors.New("sqlite: database path contains a NUL byte")
	}
	common := url.Values{}
	common.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	common.Set("_foreign_keys", "1")

	if dsn == MemoryDSN {
		// A plain :memory: database exists per connection, and a shared-cache
		// one (mode=memory&cache=shared) makes readers fail with
		// SQLITE_LOCKED, which busy_timeout does not retry, whenever a write
		// is in progress; the memdb VFS blocks readers for the whole write
		// transaction too. So the in-memory database is one connection that
		// serves reads and writes alike and is never recycled: every
		// statement sees the same database, and callers queue for it in Go.
		q := cloneValues(common)
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", MemoryDSN+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s := &Store{w: db, r: db, epoch: &store.EpochCache{}}
		if err := db.PingContext(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", MemoryDSN, err)
		}
		return s, nil
	}

	abs, err := filepath.Abs(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: database path %q: %w", dsn, err)
	}
	common.Set("_journal_mode", "WAL")
	common.Set("_synchronous", "NORMAL")
	// A file: URI with an absolute, escaped path: no character of the path
	// (such as '?' or '#') can be read as a parameter.
	uri := func(extra url.Values) string {
		q := cloneValues(common)
		for k, v := range extra {
			q[k] = v
		}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
		return u.String()
	}

	w, err := sql.Open("sqlite", uri(url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", uri(url.Values{"_query_only": {"1"}}))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)

	s := &Store{w: w, r: r, epoch: &store.EpochCache{}}
	// The writer connects first: it creates the file and switches it to WAL
	// (a property of the file), before any reader opens it.
	if err := w.PingContext(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := r.PingContext(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Ping checks that both pools reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlite: ping: %w", err)
		}
	}
	return nil
}

// Close closes the pools; an in-memory database is gone afterwards. It is
// safe to call more than once.
func (s *Store) Close() error {
	if s.tx != nil {
		return errors.New("sqlite: Close on a unit of work")
	}
	var err error
	if s.rc != nil && s.rc != s.wc {
		err = s.rc.close()
	}
	if s.wc != nil {
		err = errors.Join(err, s.wc.close())
	}
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return errors.Join(err, s.w.Close())
}

// queryer is what a *sql.DB and a *sql.Tx have in common, so that lookups
// can run alone or inside a transaction.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the writer) and
// commits it unless fn fails; inside a unit of work, directly in its
// transaction.
func (s *Store) write(ctx context.Context, fn func(tx queryer) error) error {
	if s.tx != nil {
		if s.tx.readOnly {
			// The readers are query-only anyway, but ":memory:"'s one
			// connection is not.
			return errors.New("a write in a read snapshot (Store.Read)")
		}
		return fn(s.tx.q)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(cachedTx{tx, s.wc}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction, so that its statements see one
// snapshot (a parent's existence and its children agree); inside a unit of
// work, in its transaction, which sees its own writes.
func (s *Store) read(ctx context.Context, fn func(tx queryer) error) error {
	if s.tx != nil {
		return fn(s.tx.q)
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(cachedTx{tx, s.rc})
}

// wrap names the operation in an internal error; errors that carry a code
// are already what a client may see and pass through unchanged.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// kind names a table whose rows are looked up by id.
type kind int

const (
	kindUser kind = iota
	kindTeam
	kindProject
	kindTask
	kindNotification
)

func (k kind) String() string {
	return [...]string{"user", "team", "project", "task", "notification"}[k]
}

// existsQuery checks whether a row of kind k has an id. The queries are
// constants, not built per call: mustExist runs on nearly every write.
func (k kind) existsQuery() string {
	return [...]string{
		kindUser:         `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`,
		kindTeam:         `SELECT EXISTS (SELECT 1 FROM teams WHERE id = ?)`,
		kindProject:      `SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?)`,
		kindTask:         `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?)`,
		kindNotification: `SELECT EXISTS (SELECT 1 FROM notifications WHERE id = ?)`,
	}[k]
}

// maxIDInMessage bounds how much of a client-supplied id an error repeats.
const maxIDInMessage = 64

// notFound is the error for a missing record of kind k.
func notFound(k kind, id string) error {
	if len(id) > maxIDInMessage {
		id = id[:maxIDInMessage] + "…"
	}
	return errs.E(errs.NotFound, "%s %q not found", k, id)
}

func existsQueries() []string {
	var qs []string
	for k := kindUser; k <= kindNotification; k++ {
		qs = append(qs, k.existsQuery())
	}
	return qs
}

// exists reports whether a row of kind k has the given id.
func exists(ctx context.Context, q queryer, k kind, id string) (bool, error) {
	return queryBool(ctx, q, k.existsQuery(), id)
}

// queryBool runs a query whose one row is one boolean (an EXISTS).
func queryBool(ctx context.Context, q queryer, query string, args ...any) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, query, args...).Scan(&ok)
	return ok, err
}

// getByID scans the row query (with id as its one parameter) returns; no
// row is a NotFound error for a record of kind k.
func getByID[T any](ctx context.Context, q queryer, k kind, query string, scan func(scanner) (T, error), id string) (T, error) {
	v, err := scan(q.QueryRowContext(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, notFound(k, id)
	}
	return v, err
}

// mustExist returns a NotFound error unless a row of kind k has the id.
func mustExist(ctx context.Context, q queryer, k kind, id string) error {
	ok, err := exists(ctx, q, k, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(k, id)
	}
	return nil
}

// mustBeNew returns a BadUserInput error if a row of kind k has the id: a
// caller-chosen id that is taken is a conflict the caller can fix.
func mustBeNew(ctx context.Context, q queryer, k kind, id string) error {
	ok, err := exists(ctx, q, k, id)
	if err != nil {
		return err
	}
	if ok {
		return errs.E(errs.BadUserInput, "%s %q already exists", k, id)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan, closing rows. It never returns
// a nil slice: an empty listing is an empty list.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := make([]T, 0)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// listUnder lists the rows of query (with args) in one read, after checking
// that the parent they belong to exists: a listing under a missing user,
// team or project is NOT_FOUND, never an empty list.
func listUnder[T any](ctx context.Context, s *Store, op string, parent kind, parentID string,
	scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := s.read(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, parent, parentID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scan)
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// addMember inserts a membership of userID in a team or project after
// checking both exist; added is false when the membership already was
// there (the insert ignores duplicates).
func (s *Store) addMember(ctx context.Context, op string, parent kind, parentID, userID, insert string) (bool, error) {
	var added bool
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, parent, parentID); err != nil {
			return err
		}
		if err := mustExist(ctx, tx, kindUser, userID); err != nil {
			return err
		}
		var err error
		added, err = changedOne(ctx, tx, insert, parentID, userID)
		return err
	})
	if err != nil {
		return false, wrap(op, err)
	}
	return added, nil
}

// changedOne runs a statement that changes at most one row and reports
// whether it did.
func changedOne(ctx context.Context, tx queryer, query string, args ...any) (bool, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// stamp returns t as stored (UTC, microseconds), or now when t is zero.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return store.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// stampNew returns a new record's CreatedAt and UpdatedAt as stored: a zero
// created is now, and a zero updated is the same instant as created.
func stampNew(created, updated time.Time) (time.Time, time.Time) {
	created = stamp(created)
	if updated.IsZero() {
		return created, created
	}
	return created, stamp(updated)
}

// micros and fromMicros convert timestamps to and from their column form:
// microseconds since the Unix epoch, exact at the store's precision.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullable maps the domain's "" (none) to SQL NULL, for optional references
// that foreign keys must check only when set.
func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// later returns the later of now and prev, so that UpdatedAt never moves
// backwards even if the clock does.
func later(now, prev time.Time) time.Time {
	if now.Before(prev) {
		return prev
	}
	return now
}
