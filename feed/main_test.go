package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/postgres"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an instance's hub as the feed sees it: every Deliver call,
// in order, rendered as text so two instances' lists compare in full.
type recorder struct {
	mu     sync.Mutex
	events []*realtime.Event
	gaps   [][2]uint64
	wake   chan struct{}
	// hold, when set, is called inside Deliver (to stall the follower).
	hold func(*realtime.Event)
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) deliver(ev *realtime.Event) {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		hold(ev)
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// stall makes Deliver block from now on until the returned release is
// called; entered receives once the follower is blocked.
func (r *recorder) stall() (entered <-chan struct{}, release func()) {
	in, gate := make(chan struct{}, 1), make(chan struct{})
	r.mu.Lock()
	r.hold = func(*realtime.Event) {
		select {
		case in <- struct{}{}:
		default:
		}
		<-gate
	}
	r.mu.Unlock()
	var once sync.Once
	return in, func() { once.Do(func() { close(gate) }) }
}

func (r *recorder) gapList() [][2]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.gaps)
}

func (r *recorder) onGap(from, to uint64) {
	r.mu.Lock()
	r.gaps = append(r.gaps, [2]uint64{from, to})
	r.mu.Unlock()
}

// log is the log events delivered (live ones left out), rendered.
func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if !ev.Ephemeral {
			out = append(out, render(ev))
		}
	}
	return out
}

func (r *recorder) live() []*realtime.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*realtime.Event
	for _, ev := range r.events {
		if ev.Ephemeral {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, ev := range r.events {
		if !ev.Ephemeral {
			out = append(out, ev.Seq)
		}
	}
	return out
}

// render is everything a hub uses of an event.
func render(ev *realtime.Event) string {
	ctl := ""
	if ev.Control != nil {
		b, _ := json.Marshal(ev.Control)
		ctl = string(b)
	}
	return fmt.Sprintf("%d %s %s %s [%s] %s ctl=%s eph=%v at=%s", ev.Seq, ev.Epoch, ev.Cursor, ev.Type,
		strings.Join(ev.Rooms, ","), ev.Data, ctl, ev.Ephemeral, ev.Time.UTC().Format(time.RFC3339Nano))
}

// waitSeq waits until the recorder has delivered seq (fails after d).
func (r *recorder) waitSeq(t testing.TB, seq uint64, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		s := r.seqs()
		if len(s) > 0 && s[len(s)-1] >= seq {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("seq %d not delivered within %v; delivered %d events, last %v", seq, d, len(s), tail(s))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func tail(s []uint64) []uint64 {
	if len(s) > 5 {
		return s[len(s)-5:]
	}
	return s
}

// wantGapless fails unless seqs is from+1, from+2, …, to.
func wantGapless(t testing.TB, name string, seqs []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(seqs)) != to-from {
		t.Fatalf("%s delivered %d entries, want %d (%d..%d)", name, len(seqs), to-from, from+1, to)
	}
	for i, s := range seqs {
		if s != from+uint64(i)+1 {
			t.Fatalf("%s: delivery %d is seq %d, want %d (…%v)", name, i, s, from+uint64(i)+1, seqs[max(0, i-3):min(len(seqs), i+3)])
		}
	}
}

// commit commits one unit of work appending n events, as the service does
// (ToLogEntry of a published event), and returns their seqs.
func commit(t testing.TB, s store.Store, tag string, n int) []int64 {
	t.Helper()
	return commitAt(t, s, tag, n, store.Now())
}

// commitAt is commit with the events' time at.
func commitAt(t testing.TB, s store.Store, tag string, n int, at time.Time) []int64 {
	t.Helper()
	entries := make([]*store.LogEntry, n)
	for i := range entries {
		ev := &realtime.Event{Type: "TASK_UPDATED", Rooms: []string{"project:p", "user:" + tag},
			Data: []byte(fmt.Sprintf(`{"tag": %q, "i": %d}`, tag, i)), Time: at}
		if i%5 == 4 {
			ev.Control = &realtime.Control{Op: realtime.Join, UserID: tag, Room: "project:p"}
		}
		e, err := realtime.ToLogEntry(ev)
		if err != nil {
			t.Fatal(err)
		}
		entries[i] = e
	}
	if err := s.Update(context.Background(), func(tx store.Tx) error {
		tx.Append(entries...)
		return nil
	}); err != nil {
		t.Errorf("commit %s: %v", tag, err)
		return nil
	}
	out := make([]int64, n)
	for i, e := range entries {
		out[i] = e.Seq
	}
	return out
}

// head is the database log's head.
func head(t testing.TB, s store.Store) uint64 {
	t.Helper()
	h, err := s.LogHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return uint64(h)
}

func openPG(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newPG(t testing.TB) (url string, s *postgres.Store) {
	url = pgtest.NewDatabase(t)
	return url, openPG(t, url)
}

func openSQLite(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func sqlitePath(t testing.TB) string { return filepath.Join(t.TempDir(), "taskpulse.db") }

// start makes a started Feed delivering to a new recorder, closed when t
// ends. Tests set the Redis and timing options they need.
func start(t testing.TB, opts feed.Options) (*feed.Feed, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts.Deliver, opts.OnGap = rec.deliver, rec.onGap
	if opts.Poll == 0 {
		opts.Poll = 100 * time.Millisecond
	}
	if opts.Block == 0 {
		opts.Block = 200 * time.Millisecond
	}
	f, err := feed.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f, rec
}

// sameLogs fails unless every recorder delivered exactly want's log.
func sameLogs(t testing.TB, want []string, recs map[string]*recorder) {
	t.Helper()
	for name, r := range recs {
		if got := r.log(); !slices.Equal(got, want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("%s differs at delivery %d:\n got  %s\n want %s", name, i, got[i], want[i])
				}
			}
			t.Fatalf("%s delivered %d events, want %d", name, len(got), len(want))
		}
	}
}

// dbLog is the database log after `after`, as the events a hub should get.
func dbLog(t testing.TB, s store.Store, after uint64) []string {
	t.Helper()
	epoch, err := s.LogEpoch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		es, err := s.ReadLog(context.Background(), int64(after), store.MaxLogRead)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			ev, err := realtime.FromLogEntry(e, epoch)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, render(ev))
			after = uint64(e.Seq)
		}
	}
}
