package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/taskpulse/taskpulse/store"
)

// snapshot is the store.ReadTx that Read hands to fn: a Store whose
// methods run in the read transaction (s.tx set, readOnly), and the head
// read first in it.
type snapshot struct{ *Store }

var _ store.ReadTx = snapshot{}

// LogHead is the head as of the snapshot.
func (r snapshot) LogHead(context.Context) (int64, error) { return r.tx.head, nil }

// Read runs fn in one read transaction on the reader pool. BEGIN is
// deferred: a WAL snapshot starts at the transaction's first read, so the
// head is read first, and every read after it sees the state it was read
// in. The writer commits a unit's changes, its entries and the head at
// once, so that state is exactly the units up to the head.
func (s *Store) Read(ctx context.Context, fn func(tx store.ReadTx) error) error {
	if s.tx != nil {
		return errors.New("sqlite: Read inside a unit of work or a Read")
	}
	sqlTx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return wrap("read", fmt.Errorf("begin: %w", err))
	}
	// Also on a panic in fn; nothing to commit.
	defer func() { _ = sqlTx.Rollback() }()
	st := &txState{q: cachedTx{sqlTx, s.rc}, readOnly: true}
	if err := st.q.QueryRowContext(ctx, logHeadQuery).Scan(&st.head); err != nil {
		return wrap("read: log head", err)
	}
	return fn(snapshot{&Store{w: s.w, r: s.r, wc: s.wc, rc: s.rc, tx: st, epoch: s.epoch}})
}
