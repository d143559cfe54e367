// Package postgres owns taskpulse's PostgreSQL adapter of store.Store: the
// connection pool (pgx v5's pgxpool), the embedded schema migrations and the
// SQL behind every Store method. store/storetest is its contract, as it is
// store/sqlite's; the schema is store/sqlite's, ported (TIMESTAMPTZ at the
// store's microsecond precision, BOOLEAN, the same keys, indexes and
// cascades).
//
// # Concurrency
//
// SQLite gets its guarantees from a single writer. Here many connections,
// and later many instances, write at once, so each guarantee comes from a
// statement, a transaction or a row lock in the database, none from a lock
// in this process.
//
// A write that fits one statement is one statement. UpdateTask is UPDATE …
// SET version = version + 1 … RETURNING: concurrent updates of a task queue
// on its row lock and each starts from the row the previous one committed,
// so each gets its own version. UpdateUser keeps the later revocation with
// GREATEST; UpdateProject, DeleteTask and MarkNotificationRead are single
// statements too. Creates insert with ON CONFLICT (id) DO NOTHING: a taken
// id is a row count of zero (BadUserInput), never a failed statement.
//
// A write of several statements runs in one READ COMMITTED transaction (set
// explicitly, whatever the server's default) and first locks the row its
// decision depends on; each statement after the lock sees what the previous
// holder committed:
//
//   - A team's members and invitations change only under the team's row
//     lock (SELECT … FOR NO KEY UPDATE, which leaves foreign-key checks
//     free): invite, accept, add and remove take turns per team, so of 8
//     concurrent accepts one consumes the invitation, a member is never also
//     invited, and the creator leaves last even while an invitee accepts.
//   - A parent a write depends on is pinned with FOR KEY SHARE, the lock a
//     foreign key takes: a project cannot be deleted between the check and
//     the insert of its task or member. DeleteProject locks the project FOR
//     UPDATE, so it waits for those inserts, deletes them too, and returns
//     the tasks as it deleted them (DELETE … RETURNING).
//   - SetSettingIfAbsent is INSERT … ON CONFLICT DO NOTHING, which waits for
//     a concurrent insert of the key to commit, then a SELECT: a new
//     statement, a new snapshot, which sees the winner.
//
// Listings read their parent and its children in one REPEATABLE READ, READ
// ONLY transaction: one snapshot, as SQLite's read transactions give.
//
// SERIALIZABLE with retries would also be correct, but every conflict here
// is on a row we can name; locking it makes the wait explicit, costs nothing
// when there is no contention, and retries nothing, where SERIALIZABLE aborts
// transactions under exactly the contention the contract creates (8 writers
// on one task) and keeps predicate locks on every read. No method waits on
// two locks that another takes in the other order (a team or project before
// its rows; pins conflict only with deletes), so these transactions do not
// deadlock; units of work, which combine methods, follow the lock order
// below.
//
// # Units of work and the log
//
// Every method is written once, on db, against querier: what *pgxpool.Pool
// and pgx.Tx have in common. Store is db on the pool, where each method runs
// alone (in its own transaction when it has several statements). Update
// runs fn on db over one READ COMMITTED pgx.Tx (the unit of work's Tx):
// write and read then run their statements directly in it, so
// authorization reads, several changes and log entries commit or roll back
// together without rewriting a query, and the locking argument above holds
// inside it as it does per method. A method that fails inside a unit may
// have done part of its work or aborted the transaction: fn returns the
// error and Update rolls back.
//
// The log's order is decided by the row of log_head. If fn appended n > 0
// entries, Update's last statement before COMMIT is one UPDATE log_head
// SET seq = seq + n … RETURNING that also inserts the entries with the n
// seqs it skipped over. The UPDATE takes the row's lock and keeps it until
// the transaction ends. A second unit reaching its UPDATE meanwhile waits
// for that lock, that is for the first to commit (or roll back), and then,
// READ COMMITTED, re-reads the row as committed and numbers after it. So a
// unit holds seqs above N only once the unit holding N has committed and
// is visible: seq order is commit order, across connections and instances,
// and no reader that sees N+1 can miss N. A rolled back unit's UPDATE is
// rolled back with it, so seqs have no gaps (a SEQUENCE would leave gaps
// and number in call order, not commit order). The lock is held from that
// last statement to the commit only, and it is every unit's last lock: the
// holder waits for nothing another unit holds, so it cannot be part of a
// deadlock. A unit without entries never touches log_head: reads and
// event-less writes do not queue on it. Trimming deletes a prefix of
// event_log and never touches log_head, so it does not wait for writers.
//
// # Decisions inside a unit of work
//
// READ COMMITTED alone would let a unit's check be stale by the time it
// commits (a member removed between the check and the change). So, inside a
// unit only, the reads a service decides on lock what they read, until the
// unit ends:
//
//   - IsProjectMember pins the project (FOR KEY SHARE) and locks the
//     membership row FOR SHARE. A concurrent RemoveProjectMember's DELETE
//     waits for the unit to commit, so the removal numbers its entries
//     after the unit's; or the check, reaching a row whose removal is in
//     progress, waits for it and sees the row gone. A missing row locks
//     nothing: "not a member" needs no lock to stay true enough for a
//     refusal.
//   - IsTeamMember takes the team's row lock (FOR NO KEY UPDATE), the one
//     every change of a team's members and invitations takes before it
//     touches their rows. A FOR SHARE lock on the membership row would be
//     taken before that team lock by a unit that checks and then changes
//     the team, the reverse of the changes' order: a creator removing u
//     (holding the team, waiting for u's row) and u leaving (holding u's
//     row, waiting for the team) would deadlock. The units that check team
//     membership are the team's membership changes, which take the team's
//     lock anyway, so taking it first costs them nothing.
//   - LockTask pins the task's project, then locks the task FOR NO KEY
//     UPDATE (the lock UpdateTask's UPDATE takes): a second unit's
//     LockTask of the task waits, then reads what the first committed
//     (concurrent reassignments see each other's assignee).
//
// The lock order is: a project or team row; membership rows; task rows;
// log_head, always last (see above). Units that take their locks in that
// order, and at most one exclusive lock of a kind (one task, one removed
// membership), cannot wait for each other in a cycle: each waits only for
// a lock of a later kind than every lock it holds. DeleteProject breaks the
// order within itself (tasks, then memberships by cascade) but its first
// lock is the project FOR UPDATE, which conflicts with every pin: a unit
// that pinned the project keeps DeleteProject out until it commits, and a
// unit that comes after waits at its pin, before it holds anything under
// the project. A unit may lock a task or a membership without a pin
// (UpdateTask, DeleteTask, RemoveProjectMember) and stay in order as long
// as it takes nothing under that project afterwards but log_head. Hence the
// rule for the service: decide first (checks, LockTask), change after. A
// unit that breaks it is still correct, since PostgreSQL breaks the
// deadlock and the victim runs again (below), but it waits deadlock_timeout
// (1 s by default) first.
//
// Two units that lock the same row shared and then both want it
// exclusively deadlock whatever the order: an owner removing u while u
// leaves, when both first check u's membership; two DeleteProjects of a
// project after membership checks. PostgreSQL detects the cycle (after
// deadlock_timeout, 1 s by default) and aborts one, and Update runs it
// again (below), and the retry sees the other's outcome. A service avoids
// the wait by not checking the membership it removes (RemoveProjectMember
// reports whether there was one).
//
// Update runs fn again, on a new transaction and with the entries of the
// failed attempt dropped, when the database aborted it with
// deadlock_detected (40P01) or serialization_failure (40001): up to 5
// attempts in all, after a short random pause, as the Store contract
// allows (fn has no effect outside its transaction). A method alone on the
// pool that runs several statements (DeleteProject, say) is retried the
// same way, so whichever side PostgreSQL picks as the victim goes on.
//
// # Read snapshots
//
// Read runs on one REPEATABLE READ, READ ONLY transaction whose snapshot is
// taken by its first statement, the read of log_head, and sees head P.
// Every unit with an entry up to P is in that snapshot, and no unit with an
// entry above P:
//
//   - The version of log_head with seq P was written by the unit U that
//     numbered P, so U committed and is visible. Each unit with entries
//     before U's moved log_head before U did, and U's UPDATE could only
//     read their value once they released the row lock. PostgreSQL makes a
//     transaction visible to new snapshots (ProcArrayEndTransaction) before
//     it releases its locks, so each of them was visible before U even took
//     the lock, hence before our snapshot, which came after U's commit.
//     Visibility for new snapshots never goes back, so they are all in it.
//   - A unit with an entry above P moved log_head after U (from P or
//     later). Were it visible, the snapshot's log_head would be its version
//     or a later one, not P.
//
// A transaction's changes become visible together, so "a unit is visible"
// means all its rows are, its memberships, tasks and entries alike. Units
// without entries never touch log_head and are in the snapshot or not, as
// they committed before or after it.
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
	epoch *epochCache
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
	return &Store{db: db{q: pool, pool: pool}, epoch: &epochCache{}}, nil
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
