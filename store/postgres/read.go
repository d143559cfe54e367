package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/taskpulse/taskpulse/store"
)

// snapshot is the store.ReadTx that Read hands to fn: the store's methods
// on one REPEATABLE READ, READ ONLY transaction, and the log head read
// first in it.
type snapshot struct {
	db
	head int64
}

var _ store.ReadTx = (*snapshot)(nil)

// LogHead is the head as of the snapshot.
func (r *snapshot) LogHead(context.Context) (int64, error) { return r.head, nil }

// Read runs fn on one REPEATABLE READ, READ ONLY transaction, whose
// snapshot is taken by its first statement: the read of log_head. Why a
// head P in a snapshot means every unit with an entry up to P, and none
// above, is in it: see "Read snapshots" in the package doc. Writes fail
// in the database (READ ONLY), and the decision reads of a unit of work
// lock nothing here.
func (s *Store) Read(ctx context.Context, fn func(tx store.ReadTx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return wrap("read: begin", err)
	}
	// Nothing to commit: the rollback ends the snapshot, also when ctx
	// ended fn or fn panicked.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	r := &snapshot{db: db{q: tx}}
	if err := tx.QueryRow(ctx, logHeadQuery).Scan(&r.head); err != nil {
		return wrap("read: log head", err)
	}
	return fn(r)
}
