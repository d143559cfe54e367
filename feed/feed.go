// Package feed owns moving the committed event log — the database's
// event_log, numbered in commit order (store.Log) — to every taskpulse
// instance's hub: in order, without a gap, once per instance; and the
// ephemeral live events (presence), which never enter the log.
//
// # Without Redis
//
// One follower goroutine tails the database log: on a nudge (Committed,
// after a local commit) and every Poll it reads the entries after its
// position (ReadLog) and delivers them. Commits of other processes sharing
// the database (the CLI, a second process on the SQLite file) arrive
// within Poll. PublishLive delivers locally.
//
// # With Redis
//
// The log travels through a Redis Stream, "<base>log:<epoch>", whose
// entry ids are "0-<seq>": the stream is a carrier, not the history (that
// is the database's, trimmed by HistoryTTL and HistoryMax), trimmed to
// about StreamMax entries.
//
// Relay (relay.go): every instance runs one, on a nudge and every Poll. It
// reads the entries after the stream's top from the database and appends
// them with one Lua script (one key: Cluster-safe) that adds only ids above
// the current top and never leaves a hole, so any number of relays racing
// on many instances add each entry once, in order. A commit whose process
// died before relaying is relayed by the next run of any instance. An empty
// stream (Redis restarted empty) is started from the last StreamMax entries
// of the database log.
//
// Follower (follow.go): XREAD BLOCK from "0-<position>". An entry beyond
// position+1 means the stream lacks what came before (it was trimmed,
// restarted, or restarted from a later entry): the follower fills the hole
// from the database, then goes on; entries at or before its position are
// skipped. So each instance delivers every seq once, in order, whatever
// the stream went through. When a read finds nothing for Block, the
// follower also checks the database, so nothing waits on a relay that
// cannot write.
//
// Redis unreachable: relay and follower back off (jittered exponential, up
// to 5 s); meanwhile the follower delivers from the database on nudges and
// every Poll, Ready reports Redis down, and mutations are untouched (they
// commit to the database; the relay catches the stream up once Redis is
// back, and the follower continues from its position without a duplicate).
//
// Live events (live.go) go over PUB/SUB on "<base>live:<epoch>"; each
// instance delivers its own at once and the others' as they arrive. They
// are delivered under the same lock as log entries, stamped with the
// cursor of the last log entry delivered before them on that instance.
//
// # Lost history
//
// An instance further behind than the retention (its next entries were
// trimmed before it read them) cannot deliver them. It logs an error,
// calls Options.OnGap(from, to) with the lost range, and continues at the
// oldest entry kept: the caller (the hub) ends the subscriptions that
// would otherwise silently miss events (CURSOR_EXPIRED), so a gap is
// never silent.
//
// Keys are "{<Prefix>}:log:<epoch>" and "{<Prefix>}:live:<epoch>": the
// hash tag keeps the stream of one deployment in one Cluster slot; when
// Prefix already holds a hash tag ("app:{x}:") it is used as it is. The
// epoch (store.Log.LogEpoch) in the names keeps the logs of two databases
// that share a Redis and a prefix apart.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// Defaults of Options.
const (
	DefaultPrefix     = "taskpulse"
	DefaultPoll       = 500 * time.Millisecond
	DefaultBlock      = 2 * time.Second
	DefaultHistoryTTL = time.Hour
	DefaultHistoryMax = 10000
	DefaultStreamMax  = 10000
	DefaultTrimEvery  = time.Minute
	DefaultStallAfter = 15 * time.Second
)

// Options configure a Feed.
type Options struct {
	// Log is the shared database's event log.
	Log store.Log
	// Redis carries the log and the live events between instances; nil:
	// no Redis, the follower tails the database log directly (one
	// instance, or several sharing a database without Redis: then every
	// instance polls).
	Redis redis.UniversalClient
	// Prefix names this deployment's keys (default DefaultPrefix); see the
	// package doc.
	Prefix string
	// Deliver receives every log entry after the head at Start, as an
	// event, in log order, and every live event: from one goroutine at a
	// time, under the feed's delivery lock. It must not block or call the
	// Feed (the hub's Enqueue only queues).
	Deliver func(*realtime.Event)
	// OnGap is told of log entries from..to (inclusive) that were trimmed
	// before this instance delivered them: it must end whatever would
	// otherwise silently miss them (the hub: CURSOR_EXPIRED). Called like
	// Deliver (under the same lock, in order with it: every entry delivered
	// before the call precedes the gap, every one after follows it), and
	// like Deliver it must not block or call the Feed. nil: only logged.
	OnGap func(from, to uint64)
	// Logger receives errors and state changes; nil: slog.Default().
	Logger *slog.Logger

	// Poll is how often the database log is checked without a nudge: it
	// bounds the delay of commits of other processes (the CLI) and of
	// commits whose process died before relaying. Default DefaultPoll.
	Poll time.Duration
	// Block is how long one XREAD waits for new entries (default
	// DefaultBlock). It bounds Close and an idle instance's cost, not
	// latency: a read returns as soon as an entry arrives.
	Block time.Duration
	// HistoryTTL and HistoryMax are the database log's retention: every
	// instance trims it every TrimEvery to the entries younger than
	// HistoryTTL and at most the newest HistoryMax. Zero: the default
	// (DefaultHistoryTTL, DefaultHistoryMax); negative: no bound of that
	// kind.
	HistoryTTL time.Duration
	HistoryMax int
	// TrimEvery is the trimming period (default DefaultTrimEvery);
	// negative: never (another process trims).
	TrimEvery time.Duration
	// StreamMax is the approximate MAXLEN of the Redis stream (default
	// DefaultStreamMax): a carrier for instances a little behind, not the
	// history.
	StreamMax int
	// StallAfter is how long the follower may stay behind the head
	// without progress before Ready reports it stalled (default
	// DefaultStallAfter).
	StallAfter time.Duration
}

// Stats are a feed's counters, for /metrics.
type Stats struct {
	Position uint64 // last log seq delivered on this instance
	Head     uint64 // newest log seq this instance has seen (database or stream)
	Lag      uint64 // Head - Position
	// Redis: a Redis is configured; RedisUp: its last operation succeeded.
	Redis, RedisUp bool
	Delivered      uint64 // log entries delivered
	FromStream     uint64 // of them, read from the Redis stream
	FromDB         uint64 // of them, read from the database (direct mode, fills, outages)
	Relayed        uint64 // entries this instance's relay appended to the stream
	GapFills       uint64 // holes in the stream filled from the database
	Lost           uint64 // entries trimmed before this instance delivered them (OnGap)
	Malformed      uint64 // entries that could not be turned into events (logged, skipped)
	LiveSent       uint64 // PublishLive calls
	LiveReceived   uint64 // live events of other instances delivered
	Errors         uint64 // failed operations (Redis, database), retried
}

// Errors of the lifecycle.
var (
	ErrNotStarted = errors.New("feed: not started")
	ErrStarted    = errors.New("feed: already started")
	ErrClosed     = errors.New("feed: closed")
)

// Feed moves the committed log, and live events, to this instance's
// Deliver. See the package doc.
type Feed struct {
	opts     Options
	log      *slog.Logger
	rdb      redis.UniversalClient
	base     string // key prefix with its hash tag
	instance string // tags this instance's live messages

	// Lifecycle, guarded by mu.
	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	ps      *redis.PubSub
	wg      sync.WaitGroup

	// Set by Start, read-only afterwards (published by the started flag
	// or by happening before the goroutines start).
	epoch            string
	streamKey, liveC string

	relayNudge  chan struct{} // capacity 1: "a commit may wait for the relay"
	followNudge chan struct{} // capacity 1: "a commit may wait for the follower"

	// Delivery: pos and every Deliver/OnGap call, under dmu; pos1 is pos
	// for readers outside it.
	dmu  sync.Mutex
	pos  uint64
	pos1 atomic.Uint64
	head atomic.Uint64 // newest seq seen
	// behindSince (under smu, taken inside dmu or alone, never held during
	// a Deliver): when the follower fell behind the head or last moved
	// while behind; zero when caught up. Ready reads it.
	smu         sync.Mutex
	behindSince time.Time

	redisUp atomic.Bool

	delivered, fromStream, fromDB, relayed, gapFills, lost, malformed,
	liveSent, liveReceived, errors atomic.Uint64
}

// New checks opts and returns a Feed; Start starts it.
func New(opts Options) (*Feed, error) {
	if opts.Log == nil {
		return nil, errors.New("feed: Options.Log is required")
	}
	if opts.Deliver == nil {
		return nil, errors.New("feed: Options.Deliver is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Block <= 0 {
		opts.Block = DefaultBlock
	}
	if opts.HistoryTTL == 0 {
		opts.HistoryTTL = DefaultHistoryTTL
	}
	if opts.HistoryMax == 0 {
		opts.HistoryMax = DefaultHistoryMax
	}
	if opts.TrimEvery == 0 {
		opts.TrimEvery = DefaultTrimEvery
	}
	if opts.StreamMax <= 0 {
		opts.StreamMax = DefaultStreamMax
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = DefaultStallAfter
	}
	f := &Feed{
		opts:        opts,
		log:         opts.Logger.With("component", "feed"),
		rdb:         opts.Redis,
		base:        keyBase(opts.Prefix),
		instance:    store.NewID("inst"),
		relayNudge:  make(chan struct{}, 1),
		followNudge: make(chan struct{}, 1),
	}
	f.redisUp.Store(f.rdb != nil)
	return f, nil
}

// keyBase is what every key starts with: prefix with a hash tag, so the
// keys of one deployment share a Cluster slot.
func keyBase(prefix string) string {
	if i := strings.IndexByte(prefix, '{'); i >= 0 && strings.IndexByte(prefix[i+1:], '}') > 0 {
		return prefix
	}
	return "{" + prefix + "}:"
}

// Start reads the log's epoch and head and starts delivering the entries
// after that head. ctx bounds these first reads only; the feed runs until
// Close. With Redis it also subscribes to live events (waiting up to a
// second, plus a dial, for the confirmation; an unreachable Redis does not
// fail Start: the feed works from the database until it is back).
func (f *Feed) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return ErrClosed
	case f.started:
		return ErrStarted
	}
	epoch, err := f.opts.Log.LogEpoch(ctx)
	if err != nil {
		return fmt.Errorf("feed: start: log epoch: %w", err)
	}
	head, err := f.opts.Log.LogHead(ctx)
	if err != nil {
		return fmt.Errorf("feed: start: log head: %w", err)
	}
	f.epoch = epoch
	f.streamKey, f.liveC = f.base+"log:"+epoch, f.base+"live:"+epoch
	f.pos = uint64(head)
	f.pos1.Store(f.pos)
	f.head.Store(f.pos)

	run, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	if f.rdb != nil {
		f.ps = f.rdb.Subscribe(run, f.liveC)
		f.confirmSubscribed(ctx)
		f.goRun(func() { f.live(run) })
		f.goRun(func() { f.relay(run) })
		f.goRun(func() { f.followRedis(run) })
	} else {
		f.goRun(func() { f.followDB(run) })
	}
	if f.opts.TrimEvery > 0 {
		f.goRun(func() { f.trimmer(run) })
	}
	f.started = true
	return nil
}

// confirmSubscribed waits (a second at most) for Redis to confirm the live
// subscription, so live events published once Start has returned reach
// this instance. With Redis down it gives up: the subscription is redialled
// by the live loop.
func (f *Feed) confirmSubscribed(ctx context.Context) {
	msg, err := f.ps.ReceiveTimeout(ctx, time.Second)
	if err != nil {
		return
	}
	if m, ok := msg.(*redis.Message); ok {
		f.onLive(m.Payload)
	}
}

func (f *Feed) goRun(fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
}

// Close stops every goroutine of the feed and waits for them (at most
// about Block, for a read in flight). It does not close the Log or the
// Redis client. Idempotent.
func (f *Feed) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return nil
	}
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	ps := f.ps
	f.mu.Unlock()
	var err error
	if ps != nil {
		err = ps.Close() // ends a Receive in flight
	}
	f.wg.Wait()
	return err
}

// Committed tells the feed a local unit of work appended to the log: the
// relay (or, without Redis, the follower) runs at once rather than at the
// next Poll. It never blocks, and costs nothing before Start or after
// Close.
func (f *Feed) Committed() {
	nudge(f.relayNudge)
	nudge(f.followNudge)
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // one is pending already
	}
}

// Epoch is the log's epoch ("" before Start).
func (f *Feed) Epoch() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

// Position is the last log entry delivered on this instance (the head at
// Start before any).
func (f *Feed) Position() realtime.Position {
	return realtime.Position{Epoch: f.Epoch(), Seq: f.pos1.Load()}
}
