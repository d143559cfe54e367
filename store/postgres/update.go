package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskpulse/taskpulse/store"
)

// unitOfWork is the store.Tx that Update hands to fn: the store's methods
// on the unit's pgx.Tx (db with pool nil), plus Append.
type unitOfWork struct {
	db
	entries []*store.LogEntry
}

var _ store.Tx = (*unitOfWork)(nil)

// Append queues entries (nil ones are ignored) for the log; Update numbers and inserts them at the
// end of the transaction.
func (u *unitOfWork) Append(entries ...*store.LogEntry) {
	for _, e := range entries {
		if e != nil {
			u.entries = append(u.entries, e)
		}
	}
}

// Retrying a unit the database aborted to break a deadlock or a
// serialization conflict: at most maxAttempts runs of fn, the n-th retry
// after a random pause in [1, 3) × 2^(n-1) × retryBase, so that the units
// that collided do not meet again in step.
const (
	maxAttempts = 5
	retryBase   = time.Millisecond
)

// SQLSTATEs after which a unit of work runs again: nothing of the attempt
// was stored, and the conflict it lost is over.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// Update runs fn in one READ COMMITTED transaction and, if fn appended
// entries, numbers them from log_head as its last statement before the
// commit (see the package doc for why that orders the log by commit). An
// attempt that fails with a deadlock or a serialization failure is rolled
// back, its entries dropped, and fn runs again on a new transaction.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return retrying(ctx, func() error { return s.updateOnce(ctx, fn) })
}

// retrying runs attempt until it succeeds, fails otherwise than by a
// conflict the database broke, or has run maxAttempts times, and returns
// its last error.
func retrying(ctx context.Context, run func() error) error {
	for attempt := 1; ; attempt++ {
		err := run()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		pause := time.Duration(float64(retryBase<<(attempt-1)) * (1 + 2*rand.Float64()))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// retryable reports whether err is the database aborting the transaction
// to resolve a conflict with another one.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == codeDeadlockDetected || pg.Code == codeSerializationFailure)
}

// updateOnce is one attempt of Update.
func (s *Store) updateOnce(ctx context.Context, fn func(tx store.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return wrap("update: begin", err)
	}
	committed := false
	// Also on a panic in fn, which then goes on; the rollback must run even
	// when ctx is what ended fn.
	defer func() {
		if !committed {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	u := &unitOfWork{db: db{q: tx, unit: true}}
	if err := fn(u); err != nil {
		return err
	}
	numbered, err := appendLog(ctx, tx, u.entries)
	if err != nil {
		return wrap("update: append to the log", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap("update: commit", err)
	}
	committed = true
	for i, e := range u.entries {
		e.Seq, e.At = numbered[i].Seq, numbered[i].At
	}
	return nil
}

// appendLogQuery moves log_head by $1 and inserts the entries (parallel
// arrays, in order) with the seqs it skipped over, in one statement: the
// head's row lock is then held for this statement and the commit only.
// rooms arrive as JSON arrays, since PostgreSQL arrays cannot be ragged.
const appendLogQuery = `WITH head AS (UPDATE log_head SET seq = seq + $1 WHERE one RETURNING seq)
	INSERT INTO event_log (seq, type, rooms, data, control, at)
	SELECT head.seq - $1 + e.ord, e.type,
		ARRAY(SELECT r.v FROM jsonb_array_elements_text(e.rooms::jsonb) WITH ORDINALITY AS r(v, i) ORDER BY r.i),
		e.data, e.control, e.at
	FROM head, unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::timestamptz[])
		WITH ORDINALITY AS e(type, rooms, data, control, at, ord)
	RETURNING seq`

// appendLog inserts copies of entries into the log and returns them with
// their seqs. Without entries it does nothing: a unit of work without
// events does not touch log_head, so it serializes with nobody.
func appendLog(ctx context.Context, q querier, entries []*store.LogEntry) ([]store.LogEntry, error) {
	n := len(entries)
	if n == 0 {
		return nil, nil
	}
	out := make([]store.LogEntry, n)
	types := make([]string, n)
	rooms := make([]string, n)
	data := make([][]byte, n)
	control := make([][]byte, n)
	at := make([]time.Time, n)
	for i, e := range entries {
		out[i] = *e
		out[i].At = stamp(e.At)
		types[i], data[i], control[i], at[i] = e.Type, nonNil(e.Data), e.Control, out[i].At
		r := e.Rooms
		if r == nil {
			r = []string{}
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		rooms[i] = string(b)
	}
	rows, err := q.Query(ctx, appendLogQuery, n, types, rooms, data, control, at)
	if err != nil {
		return nil, err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	var head int64
	for _, s := range seqs {
		head = max(head, s)
	}
	for i := range out {
		out[i].Seq = head - int64(n) + int64(i) + 1
	}
	return out, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
