package realtime

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recSink records what a subscription's client would see.
type recSink struct {
	mu       sync.Mutex
	events   []*Event
	payloads []*Payload
	ends     int
	endErr   error
	late     int // Deliver calls after End (the Sink contract forbids them)

	encode    bool // call Payload.Bytes like a transport writing the frame
	onDeliver func(p *Payload)
	onEnd     func(err error)
}

func (s *recSink) Deliver(p *Payload) {
	if s.encode {
		if _, err := p.Bytes(); err != nil {
			panic(err)
		}
	}
	s.mu.Lock()
	if s.ends > 0 {
		s.late++
	}
	s.events = append(s.events, p.Event)
	s.payloads = append(s.payloads, p)
	f := s.onDeliver
	s.mu.Unlock()
	if f != nil {
		f(p)
	}
}

func (s *recSink) End(err error) {
	s.mu.Lock()
	s.ends++
	s.endErr = err
	f := s.onEnd
	s.mu.Unlock()
	if f != nil {
		f(err)
	}
}

func (s *recSink) types() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.events))
	for i, ev := range s.events {
		out[i] = ev.Type
	}
	return out
}

func (s *recSink) seqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(s.events))
	for i, ev := range s.events {
		out[i] = ev.Seq
	}
	return out
}

func (s *recSink) ended() (n int, err error, late int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ends, s.endErr, s.late
}

// countEnc counts Encode calls.
type countEnc struct{ n atomic.Int64 }

func (e *countEnc) Encode(ev *Event) ([]byte, error) {
	e.n.Add(1)
	return []byte(`{"type":"` + ev.Type + `"}`), nil
}

// nopSink drops everything.
type nopSink struct{}

func (nopSink) Deliver(*Payload) {}
func (nopSink) End(error)        {}

// env is a broker feeding a hub, as the server wires them.
type env struct {
	t   testing.TB
	b   *MemoryBroker
	h   *Hub
	enc *countEnc
}

func newEnv(t testing.TB, opts HubOptions) *env {
	t.Helper()
	e := &env{t: t, b: NewMemoryBroker(MemoryBrokerOptions{}), h: NewHub(opts), enc: &countEnc{}}
	if err := e.b.Start(e.h.Enqueue); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.b.Close()
		e.h.Close()
	})
	return e
}

func (e *env) sub(opts SubscribeOptions) (*Subscription, *recSink) {
	sink := &recSink{}
	opts.Sink = sink
	if opts.Encoder == nil {
		opts.Encoder = e.enc
	}
	return e.h.Subscribe(opts), sink
}

// hold makes dispatch wait until the returned channel is closed: it
// publishes an event whose only recipient blocks in Deliver, so every event
// published after it stays queued meanwhile.
func (e *env) hold() chan struct{} {
	gate := make(chan struct{})
	room := fmt.Sprintf("test:gate:%p", gate)
	e.h.Subscribe(SubscribeOptions{Rooms: []string{room}, Encoder: &countEnc{}, Sink: &funcSink{deliver: func(*Payload) { <-gate }}})
	e.publish(&Event{Type: "GATE", Rooms: []string{room}})
	return gate
}

func (e *env) publish(ev *Event) {
	e.t.Helper()
	if err := e.b.Publish(context.Background(), ev); err != nil {
		e.t.Fatalf("publish %s: %v", ev.Type, err)
	}
}

// flush returns once the hub has fully applied every event enqueued before
// it: it sends a barrier event through the same inbox and waits for it.
func flush(t testing.TB, h *Hub) {
	t.Helper()
	done := make(chan struct{})
	room := fmt.Sprintf("test:barrier:%p", done)
	// Anchored past every numbered event, so no control (Lost included)
	// ends it; the unnumbered barrier still reaches it.
	s := h.Subscribe(SubscribeOptions{Rooms: []string{room}, After: math.MaxUint64 - 1, Encoder: &countEnc{}, Sink: &funcSink{deliver: func(*Payload) { close(done) }}})
	defer s.Unsubscribe()
	h.Enqueue(&Event{Type: "BARRIER", Rooms: []string{room}})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hub did not dispatch a barrier event within 10s")
	}
}

// waitStats waits until the hub's counters satisfy ok.
func waitStats(t testing.TB, h *Hub, ok func(HubStats) bool, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.Stats()
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v; want %s", st, want)
		}
		time.Sleep(time.Millisecond)
	}
}

type funcSink struct {
	deliver func(*Payload)
	end     func(error)
}

func (s *funcSink) Deliver(p *Payload) {
	if s.deliver != nil {
		s.deliver(p)
	}
}

func (s *funcSink) End(err error) {
	if s.end != nil {
		s.end(err)
	}
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, nil)), lb
}

func ev(typ string, rooms ...string) *Event { return &Event{Type: typ, Rooms: rooms, Time: time.Now()} }

func ctl(typ string, c Control, rooms ...string) *Event {
	e := ev(typ, rooms...)
	e.Control = &c
	return e
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
