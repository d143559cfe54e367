package postgres

import (
	"context"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const (
	readLogQuery = `SELECT seq, type, rooms, data, control, at FROM event_log
		WHERE seq > $1 ORDER BY seq LIMIT $2`
	logHeadQuery = `SELECT seq FROM log_head WHERE one`
	// Trimming deletes a prefix of the log, never an entry between two kept
	// ones, even if the instances' clocks disagreed about at.
	trimLogByAgeQuery = `DELETE FROM event_log
		WHERE seq <= (SELECT max(seq) FROM event_log WHERE at < $1)`
	trimLogByCountQuery = `DELETE FROM event_log
		WHERE seq <= (SELECT seq FROM log_head WHERE one) - $1`
	oldestLogSeqQuery = `SELECT coalesce((SELECT min(seq) FROM event_log),
		(SELECT seq + 1 FROM log_head WHERE one))`
)

func scanLogEntry(sc scanner) (store.LogEntry, error) {
	var e store.LogEntry
	if err := sc.Scan(&e.Seq, &e.Type, &e.Rooms, &e.Data, &e.Control, &e.At); err != nil {
		return store.LogEntry{}, err
	}
	e.At = utc(e.At)
	return e, nil
}

// ReadLog reads committed entries on the pool.
func (s *Store) ReadLog(ctx context.Context, after int64, limit int) ([]store.LogEntry, error) {
	if limit < 1 || limit > store.MaxLogRead {
		return nil, errs.E(errs.BadUserInput, "a log read returns 1 to %d entries, got %d", store.MaxLogRead, limit)
	}
	out, err := query(ctx, s.q, scanLogEntry, readLogQuery, after, limit)
	if err != nil {
		return nil, wrap("read log", err)
	}
	return out, nil
}

// LogHead reads the last seq assigned (committed).
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.q.QueryRow(ctx, logHeadQuery).Scan(&head)
	return head, wrap("log head", err)
}

// TrimLog deletes by age, then by count, and reads the oldest kept seq, in
// one transaction. It takes no lock on log_head: an append committing
// meanwhile only adds newer entries.
func (s *Store) TrimLog(ctx context.Context, before time.Time, keep int) (int64, error) {
	var oldest int64
	err := s.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, trimLogByAgeQuery, before); err != nil {
			return err
		}
		if keep >= 0 {
			if _, err := q.Exec(ctx, trimLogByCountQuery, keep); err != nil {
				return err
			}
		}
		return q.QueryRow(ctx, oldestLogSeqQuery).Scan(&oldest)
	})
	return oldest, wrap("trim log", err)
}

// LogEpoch is the database's epoch, created on first use.
func (s *Store) LogEpoch(ctx context.Context) (string, error) { return s.epoch.Epoch(ctx, s) }
