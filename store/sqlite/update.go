package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/taskpulse/taskpulse/store"
)

// txState is a unit of work in progress: its transaction on the writer and
// the log entries appended so far; or a Read snapshot (readOnly), its
// transaction on a reader and the head read first in it.
type txState struct {
	q        cachedTx
	entries  []*store.LogEntry
	readOnly bool
	head     int64
}

// unitOfWork is the store.Tx that Update hands to fn: a Store whose
// methods run in the unit's transaction (s.tx set), plus Append.
type unitOfWork struct{ *Store }

var _ store.Tx = unitOfWork{}

// Append queues entries (nil ones are ignored) for the log; Update numbers and inserts them at the
// end of the transaction.
func (u unitOfWork) Append(entries ...*store.LogEntry) {
	for _, e := range entries {
		if e != nil {
			u.tx.entries = append(u.tx.entries, e)
		}
	}
}

// Update runs fn in one write transaction on the writer (BEGIN IMMEDIATE:
// the write lock is taken up front, so reads in fn see the state the change
// commits over) and commits it with fn's log entries. The single writer
// orders units of work, so numbering the entries from log_head just before
// the commit makes seq order commit order.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.tx != nil {
		return errors.New("sqlite: Update inside a unit of work or a Read")
	}
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap("update", fmt.Errorf("begin: %w", err))
	}
	committed := false
	// Also on a panic in fn, which then goes on.
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	st := &txState{q: cachedTx{sqlTx, s.wc}}
	u := unitOfWork{&Store{w: s.w, r: s.w, wc: s.wc, rc: s.wc, tx: st, epoch: s.epoch}}
	if err := fn(u); err != nil {
		return err
	}
	numbered, err := appendLog(ctx, st.q, st.entries)
	if err != nil {
		return wrap("update: append to the log", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return wrap("update", fmt.Errorf("commit: %w", err))
	}
	committed = true
	for i, e := range st.entries {
		e.Seq, e.At = numbered[i].Seq, numbered[i].At
	}
	return nil
}

// appendLog moves log_head by len(entries) and inserts copies of them with
// the seqs it skipped over, returning the copies. Without entries it does
// nothing: a unit of work without events does not touch log_head.
func appendLog(ctx context.Context, q queryer, entries []*store.LogEntry) ([]store.LogEntry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var head int64
	if err := q.QueryRowContext(ctx, bumpLogHeadQuery, len(entries)).Scan(&head); err != nil {
		return nil, err
	}
	out := make([]store.LogEntry, len(entries))
	for i, e := range entries {
		c := *e
		c.Seq = head - int64(len(entries)) + int64(i) + 1
		c.At = stamp(c.At)
		rooms, err := encodeRooms(c.Rooms)
		if err != nil {
			return nil, err
		}
		var control any // NULL, not an empty blob, when there is none
		if c.Control != nil {
			control = c.Control
		}
		if _, err := q.ExecContext(ctx, insertLogEntryQuery,
			c.Seq, c.Type, rooms, nonNil(c.Data), control, micros(c.At)); err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
