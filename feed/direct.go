package feed

import (
	"context"
	"math/rand/v2"
	"time"
)

// followDB is the follower without Redis: it tails the database log on
// every nudge and every Poll.
func (f *Feed) followDB(ctx context.Context) {
	tick := time.NewTicker(f.opts.Poll)
	defer tick.Stop()
	failing := false
	for {
		if err := f.catchUpDB(ctx); err != nil && ctx.Err() == nil {
			f.fail(&failing, "feed: reading the database log failed; retrying", err)
		} else if err == nil {
			f.recovered(&failing, "feed: reading the database log again")
		}
		select {
		case <-ctx.Done():
			return
		case <-f.followNudge:
		case <-tick.C:
		}
	}
}

// trimmer trims the database log to the retention every TrimEvery (every
// instance does; trimming is idempotent and takes no lock writers wait on).
func (f *Feed) trimmer(ctx context.Context) {
	tick := time.NewTicker(f.opts.TrimEvery)
	defer tick.Stop()
	failing := false
	for {
		if _, err := f.Trim(ctx); err != nil && ctx.Err() == nil {
			f.fail(&failing, "feed: trimming the database log failed; retrying", err)
		} else if err == nil {
			f.recovered(&failing, "feed: trimming the database log again")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Trim applies the retention (HistoryTTL, HistoryMax) to the database log
// now and returns the oldest seq kept (head+1 when none is): a resume
// from a cursor before oldest-1 has lost history.
func (f *Feed) Trim(ctx context.Context) (oldest int64, err error) {
	var before time.Time // zero: nothing is older
	if f.opts.HistoryTTL > 0 {
		before = time.Now().Add(-f.opts.HistoryTTL)
	}
	keep := f.opts.HistoryMax
	if keep < 0 {
		keep = -1
	}
	return f.opts.Log.TrimLog(ctx, before, keep)
}

// backoff is a jittered exponential delay between retries of an
// unreachable Redis: 100 ms doubling up to 5 s, each wait a random value
// in its upper half, so instances do not retry in step.
type backoff struct {
	n     int
	until time.Time // no retry before
}

const (
	backoffBase = 100 * time.Millisecond
	backoffCap  = 5 * time.Second
)

// failed schedules the next retry and returns when it is.
func (b *backoff) failed() time.Duration {
	d := backoffCap
	if b.n < 6 { // 100ms << 6 > 5s
		d = min(backoffCap, backoffBase<<b.n)
	}
	b.n++
	d = d/2 + rand.N(d/2+1)
	b.until = time.Now().Add(d)
	return d
}

func (b *backoff) reset() { b.n, b.until = 0, time.Time{} }

// waiting reports whether a retry must still wait, and how long.
func (b *backoff) waiting() (time.Duration, bool) {
	if b.until.IsZero() {
		return 0, false
	}
	d := time.Until(b.until)
	return d, d > 0
}
