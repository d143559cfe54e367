package store

import (
	"context"
	"sync"
	"time"
)

// LogEntry is one event of the ordered, durable log. The store decides Seq
// (1, 2, … without gaps, in commit order across every process sharing the
// database) and keeps Data and Control as opaque bytes.
type LogEntry struct {
	Seq     int64
	Type    string
	Rooms   []string // who may see it
	Data    []byte   // JSON, opaque to the store; nil is stored as empty
	Control []byte   // JSON or nil (none)
	At      time.Time
}

// MaxLogRead is the most entries one ReadLog returns.
const MaxLogRead = 1000

// LogEpochKey is the setting that holds a database's log epoch.
const LogEpochKey = "log_epoch"

// Log reads and trims the event log Update appends to.
type Log interface {
	// ReadLog returns the entries with Seq > after, ascending, at most
	// limit (1 to MaxLogRead; else BadUserInput). Entries trimmed away are
	// simply absent: compare with TrimLog's oldest.
	ReadLog(ctx context.Context, after int64, limit int) ([]LogEntry, error)
	// LogHead is the Seq of the last entry ever appended (0: none), trimmed
	// or not.
	LogHead(ctx context.Context) (int64, error)
	// TrimLog deletes the entries older than before and those beyond the
	// newest keep (keep < 0: no count bound), and returns the oldest Seq
	// still kept, or head+1 when none is: a reader that needs an entry
	// older than that has lost it.
	TrimLog(ctx context.Context, before time.Time, keep int) (oldest int64, err error)
	// LogEpoch identifies this database's log: created once (a random id),
	// stable across restarts and instances, new with a new database, so a
	// Seq from another epoch is never taken for one of this log.
	LogEpoch(ctx context.Context) (string, error)
}

// EpochCache remembers a database's log epoch once read (it never changes
// for a database): the adapters' LogEpoch.
type EpochCache struct {
	mu sync.Mutex
	v  string
}

// Epoch returns the epoch, creating it on first use with
// SetSettingIfAbsent (concurrent first callers, in any process, agree).
func (c *EpochCache) Epoch(ctx context.Context, q interface {
	SetSettingIfAbsent(ctx context.Context, key, value string) (string, error)
}) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.v != "" {
		return c.v, nil
	}
	v, err := q.SetSettingIfAbsent(ctx, LogEpochKey, NewID("epoch"))
	if err != nil {
		return "", err
	}
	c.v = v
	return v, nil
}
