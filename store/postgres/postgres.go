package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// defaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout: a server whose database is unreachable fails its start
// (and /readyz) instead of hanging.
const defaultConnectTimeout = 10 * time.Second

// defaultLockTimeout bounds how long a statement waits for a row lock when
// the URL sets no lock_timeout, as busy_timeout does for store/sqlite: a
// transaction left open elsewhere (a psql session, a stuck process) fails
// requests after it instead of hanging them.
const defaultLockTimeout = "5s"

// Options tune the pool.
type Options struct {
	// MaxConns caps the pool's connections; 0 keeps the URL's
	// pool_max_conns, or pgxpool's default (the larger of 4 and the CPUs).
	MaxConns int
}

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	db
	epoch *store.EpochCache
}

var _ store.Store = (*Store)(nil)

// querier is what *pgxpool.Pool and pgx.Tx have in common: every statement
// of the store runs through it, alone on the pool or inside a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// db runs the store's methods on q. With pool set, q is the pool and
// methods open their own transactions; with pool nil, q is a caller's
// transaction and everything runs in it: a unit of work's (unit set: its
// decision reads lock what they read) or a Read snapshot's.
type db struct {
	q    querier
	pool *pgxpool.Pool
	unit bool
}

// Open connects to the database at url (postgres:// or postgresql://, with
// any libpq parameter pgx understands), applies pending migrations and
// refuses a database whose schema is newer than this build
// (ErrSchemaTooNew).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(min(opts.MaxConns, math.MaxInt32))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["lock_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["lock_timeout"] = defaultLockTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	if err := migrate(ctx, pool, migrationFiles); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{db: db{q: pool, pool: pool}, epoch: &store.EpochCache{}}, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// write runs fn atomically: in a new READ COMMITTED transaction on the
// pool, committed unless fn fails (and run again, as Update does, if the
// database broke a deadlock by aborting it), or directly in the caller's
// transaction.
func (d db) write(ctx context.Context, fn func(q querier) error) error {
	if d.pool == nil {
		return fn(d.q)
	}
	return retrying(ctx, func() error {
		return pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted},
			func(tx pgx.Tx) error { return fn(tx) })
	})
}

// read runs fn on one snapshot: a REPEATABLE READ, READ ONLY transaction on
// the pool, or the caller's transaction.
func (d db) read(ctx context.Context, fn func(q querier) error) error {
	if d.pool == nil {
		return fn(d.q)
	}
	return pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(tx) })
}

// SQLSTATEs the adapter translates.
const (
	// A NUL character, or bytes that are not UTF-8: PostgreSQL text cannot
	// hold them, where SQLite's can.
	codeCharacterNotInRepertoire = "22021"
	codeUntranslatableCharacter  = "22P05"
)

// wrap names the operation in an internal error; errors that carry a code
// are already what a client may see and pass through unchanged. Text the
// database cannot store is the client's to fix.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && (pg.Code == codeCharacterNotInRepertoire || pg.Code == codeUntranslatableCharacter) {
		return errs.E(errs.BadUserInput, "text must be UTF-8 without NUL characters")
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
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

// existsQuery checks whether a row of kind k has an id, for reads.
func (k kind) existsQuery() string {
	return [...]string{
		kindUser:         `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`,
		kindTeam:         `SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)`,
		kindProject:      `SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)`,
		kindTask:         `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = $1)`,
		kindNotification: `SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1)`,
	}[k]
}

// pinQuery finds a row of kind k by id for a write and keeps it, until the
// transaction ends, from being deleted or having its id changed: the lock a
// foreign key check takes, taken before the write depends on it.
func (k kind) pinQuery() string {
	return [...]string{
		kindUser:         `SELECT true FROM users WHERE id = $1 FOR KEY SHARE`,
		kindTeam:         `SELECT true FROM teams WHERE id = $1 FOR KEY SHARE`,
		kindProject:      `SELECT true FROM projects WHERE id = $1 FOR KEY SHARE`,
		kindTask:         `SELECT true FROM tasks WHERE id = $1 FOR KEY SHARE`,
		kindNotification: `SELECT true FROM notifications WHERE id = $1 FOR KEY SHARE`,
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

// alreadyExists is the error for a caller-chosen id that is taken: a
// conflict the caller can fix.
func alreadyExists(k kind, id string) error {
	if len(id) > maxIDInMessage {
		id = id[:maxIDInMessage] + "…"
	}
	return errs.E(errs.BadUserInput, "%s %q already exists", k, id)
}

// queryBool runs a query whose one row is one boolean (an EXISTS).
func queryBool(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, query, args...).Scan(&ok)
	return ok, err
}

// mustExist returns a NotFound error unless a row of kind k has the id.
func mustExist(ctx context.Context, q querier, k kind, id string) error {
	ok, err := queryBool(ctx, q, k.existsQuery(), id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(k, id)
	}
	return nil
}

// pin is mustExist for a write: the row also stays until the transaction
// ends (pinQuery).
func pin(ctx context.Context, q querier, k kind, id string) error {
	var ok bool
	err := q.QueryRow(ctx, k.pinQuery(), id).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(k, id)
	}
	return err
}

// lockedExists runs a locking query whose row, if any, is one true: it
// reports whether there was a row (and so a lock).
func lockedExists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, query, args...).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return ok, err
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// getByID scans the row query (with args, the id first) returns; no row is
// a NotFound error for a record of kind k.
func getByID[T any](ctx context.Context, q querier, k kind, query string, scan func(scanner) (T, error), id string, args ...any) (T, error) {
	v, err := scan(q.QueryRow(ctx, query, append([]any{id}, args...)...))
	if errors.Is(err, pgx.ErrNoRows) {
		var zero T
		return zero, notFound(k, id)
	}
	return v, err
}

// collect scans every row of rows with scan, closing rows. It never returns
// a nil slice: an empty listing is an empty list.
func collect[T any](rows pgx.Rows, scan func(scanner) (T, error)) ([]T, error) {
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

// query runs a listing query and collects its rows.
func query[T any](ctx context.Context, q querier, scan func(scanner) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// listUnder lists the rows of sql (with args) on one snapshot, after
// checking that the parent they belong to exists: a listing under a
// missing user, team or project is NOT_FOUND, never an empty list.
func listUnder[T any](ctx context.Context, d db, op string, parent kind, parentID string,
	scan func(scanner) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := d.read(ctx, func(q querier) error {
		if err := mustExist(ctx, q, parent, parentID); err != nil {
			return err
		}
		var err error
		out, err = query(ctx, q, scan, sql, args...)
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// changedOne runs a statement that changes at most one row and reports
// whether it did.
func changedOne(ctx context.Context, q querier, sql string, args ...any) (bool, error) {
	tag, err := q.Exec(ctx, sql, args...)
	return tag.RowsAffected() == 1, err
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

// nullable maps the domain's "" (none) to SQL NULL, for optional references
// that foreign keys must check only when set.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// utc is a scanned TIMESTAMPTZ as the domain holds it: pgx returns local
// time, the store UTC (a zero-location time, so records compare equal).
func utc(t time.Time) time.Time { return t.UTC() }

// nullTime maps "never" (the zero time) to NULL, and back with fromNull.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
