package sqlite

import (
	"context"
	"encoding/json"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const (
	// Runs last in a unit of work that appended; parameter: how many.
	bumpLogHeadQuery    = `UPDATE log_head SET seq = seq + ? WHERE id = 1 RETURNING seq`
	insertLogEntryQuery = `INSERT INTO event_log (seq, type, rooms, data, control, at) VALUES (?, ?, ?, ?, ?, ?)`
	readLogQuery        = `SELECT seq, type, rooms, data, control, at FROM event_log
		WHERE seq > ? ORDER BY seq LIMIT ?`
	logHeadQuery = `SELECT seq FROM log_head WHERE id = 1`
	// Trimming deletes a prefix of the log, never an entry between two kept
	// ones, even if clocks disagreed about at: parameter: before.
	trimLogByAgeQuery = `DELETE FROM event_log
		WHERE seq <= (SELECT max(seq) FROM event_log WHERE at < ?)`
	// Parameter: keep.
	trimLogByCountQuery = `DELETE FROM event_log
		WHERE seq <= (SELECT seq FROM log_head WHERE id = 1) - ?`
	oldestLogSeqQuery = `SELECT coalesce((SELECT min(seq) FROM event_log),
		(SELECT seq + 1 FROM log_head WHERE id = 1))`
)

func encodeRooms(rooms []string) (string, error) {
	if rooms == nil {
		rooms = []string{}
	}
	b, err := json.Marshal(rooms)
	return string(b), err
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func scanLogEntry(sc scanner) (store.LogEntry, error) {
	var e store.LogEntry
	var rooms string
	var at int64
	if err := sc.Scan(&e.Seq, &e.Type, &rooms, &e.Data, &e.Control, &at); err != nil {
		return store.LogEntry{}, err
	}
	if err := json.Unmarshal([]byte(rooms), &e.Rooms); err != nil {
		return store.LogEntry{}, err
	}
	e.At = fromMicros(at)
	return e, nil
}

// checkLogLimit refuses a ReadLog limit outside 1..MaxLogRead.
func checkLogLimit(limit int) error {
	if limit < 1 || limit > store.MaxLogRead {
		return errs.E(errs.BadUserInput, "a log read returns 1 to %d entries, got %d", store.MaxLogRead, limit)
	}
	return nil
}

// ReadLog reads on the reader pool: committed entries only.
func (s *Store) ReadLog(ctx context.Context, after int64, limit int) ([]store.LogEntry, error) {
	if err := checkLogLimit(limit); err != nil {
		return nil, err
	}
	rows, err := s.rq().QueryContext(ctx, readLogQuery, after, limit)
	if err != nil {
		return nil, wrap("read log", err)
	}
	out, err := collect(rows, scanLogEntry)
	return out, wrap("read log", err)
}

// LogHead reads the last seq assigned.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.rq().QueryRowContext(ctx, logHeadQuery).Scan(&head)
	return head, wrap("log head", err)
}

// TrimLog deletes by age, then by count, and reads the oldest kept seq, in
// one write transaction.
func (s *Store) TrimLog(ctx context.Context, before time.Time, keep int) (int64, error) {
	var oldest int64
	err := s.write(ctx, func(tx queryer) error {
		if _, err := tx.ExecContext(ctx, trimLogByAgeQuery, micros(before)); err != nil {
			return err
		}
		if keep >= 0 {
			if _, err := tx.ExecContext(ctx, trimLogByCountQuery, keep); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, oldestLogSeqQuery).Scan(&oldest)
	})
	return oldest, wrap("trim log", err)
}

// LogEpoch is the database's epoch, created on first use.
func (s *Store) LogEpoch(ctx context.Context) (string, error) { return s.epoch.Epoch(ctx, s) }
