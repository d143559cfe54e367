package feed

import (
	"context"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// seen records that the log reaches seq (for Lag and stall detection).
func (f *Feed) seen(seq uint64) {
	for {
		h := f.head.Load()
		if seq <= h || f.head.CompareAndSwap(h, seq) {
			break
		}
	}
	f.smu.Lock()
	if seq > f.pos1.Load() && f.behindSince.IsZero() {
		f.behindSince = time.Now()
	}
	f.smu.Unlock()
}

// source tells deliverLocked where an entry was read, for the counters.
type source uint8

const (
	fromDB source = iota
	fromStream
)

// deliverLocked delivers e if it is the next entry (e.Seq == pos+1); an
// entry at or before pos is skipped (already delivered). An entry further
// on is taken as the first one kept after trimmed entries: the caller
// passes only database reads (gapless unless trimmed) or stream entries
// whose predecessors it has already delivered.
func (f *Feed) deliverLocked(e store.LogEntry, src source) {
	seq := uint64(e.Seq)
	if seq <= f.pos {
		return
	}
	if seq > f.pos+1 {
		f.lostLocked(f.pos+1, seq-1)
	}
	ev, err := realtime.FromLogEntry(e, f.epoch)
	if err != nil {
		// Nothing can be done with it on any instance; skipping it keeps
		// the rest of the log moving.
		f.malformed.Add(1)
		f.log.Error("feed: malformed log entry skipped", "seq", seq, "type", e.Type, "err", err)
	} else {
		// Counted first: whoever sees the event (a test, /metrics after a
		// client got it) sees the position that includes it.
		f.delivered.Add(1)
		if src == fromStream {
			f.fromStream.Add(1)
		} else {
			f.fromDB.Add(1)
		}
		f.pos1.Store(seq)
		f.opts.Deliver(ev)
	}
	f.pos = seq
	f.pos1.Store(seq)
	f.smu.Lock()
	if seq >= f.head.Load() {
		f.behindSince = time.Time{}
	} else {
		f.behindSince = time.Now() // progress: the stall clock restarts
	}
	f.smu.Unlock()
}

// lostLocked reports entries from..to as trimmed before delivery.
func (f *Feed) lostLocked(from, to uint64) {
	f.lost.Add(to - from + 1)
	f.log.Error("feed: log entries were trimmed before this instance delivered them; their subscriptions must resume",
		"from", from, "to", to, "epoch", f.epoch)
	if f.opts.OnGap != nil {
		f.opts.OnGap(from, to)
	}
	f.pos = to
	f.pos1.Store(to)
}

// catchUpDB delivers every entry the database log has after pos. An entry
// missing at the start of a read was trimmed (the log is gapless
// otherwise): OnGap.
func (f *Feed) catchUpDB(ctx context.Context) error {
	for {
		after := f.pos1.Load()
		entries, err := f.opts.Log.ReadLog(ctx, int64(after), store.MaxLogRead)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		f.seen(uint64(entries[len(entries)-1].Seq))
		f.dmu.Lock()
		for _, e := range entries {
			f.deliverLocked(e, fromDB)
		}
		f.dmu.Unlock()
		if len(entries) < store.MaxLogRead {
			return nil
		}
	}
}
