package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
)

// textWire is a wire that renders frames as readable lines and records
// what the session asks of it; it writes nothing.
type textWire struct{ aborts []bool }

func (w *textWire) appendNext(b []byte, s *subscription, payload []byte) []byte {
	return fmt.Appendf(b, "next %s %s\n", s.id, payload)
}
func (w *textWire) appendRaw(b, msg []byte) []byte { return fmt.Appendf(b, "raw %s\n", msg) }
func (w *textWire) appendControl(b []byte, kind uint8, payload []byte) []byte {
	return fmt.Appendf(b, "control %d %q\n", kind, payload)
}
func (w *textWire) appendClose(b []byte, code int, reason string) []byte {
	return fmt.Appendf(b, "close %d %s\n", code, reason)
}
func (w *textWire) tryWrite(*rawWrite, []byte) (int, error) { return 0, errors.ErrUnsupported }
func (w *textWire) write([]byte) error                      { return nil }
func (w *textWire) closed(int, string)                      {}
func (w *textWire) abort(slow bool)                         { w.aborts = append(w.aborts, slow) }

// encoderFunc is a realtime.Encoder.
type encoderFunc func(*realtime.Event) ([]byte, error)

func (f encoderFunc) Encode(ev *realtime.Event) ([]byte, error) { return f(ev) }

// newTestSession is a session on a textWire whose writing is owned by the
// test (flushing), so frames stay queued until take.
func newTestSession(opts Options) (*session, *textWire) {
	var c core
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.Authenticate == nil {
		// A session-level test never authenticates.
		opts.Authenticate = func(context.Context, *http.Request, map[string]any) (context.Context, string, time.Time, error) {
			panic("not called")
		}
	}
	c.init(opts, false)
	w := &textWire{}
	s := &session{}
	s.init(&c, w, protoTransportWS, nil, false)
	s.flushing = true
	return s, w
}

// TestRender: the bytes a batch of frames makes. Payloads of a
// subscription the client completed are dropped even if they were queued
// before the complete; those of one the hub ended still go out; a payload
// that failed to encode is skipped; nothing follows the close.
func TestRender(t *testing.T) {
	s, _ := newTestSession(Options{})
	live := &subscription{s: s, id: "live"}
	ended := &subscription{s: s, id: "ended"}
	ended.state.Store(subEnded)
	cancelled := &subscription{s: s, id: "cancelled"}
	cancelled.state.Store(subCancelled)
	ev := &realtime.Event{Type: "SYSTEM_UPDATE", Data: []byte(`{}`)}
	ok := realtime.NewPayload(ev, encoderFunc(func(*realtime.Event) ([]byte, error) { return []byte(`{"data":1}`), nil }))
	bad := realtime.NewPayload(ev, encoderFunc(func(*realtime.Event) ([]byte, error) { return nil, errors.New("boom") }))

	b, n, closeF := s.render(nil, []frame{
		{kind: frameNext, sub: live, payload: ok},
		{kind: frameNext, sub: cancelled, payload: ok},
		{kind: frameNext, sub: ended, payload: ok},
		{kind: frameNext, sub: live, payload: bad},
		{kind: frameRaw, raw: []byte(`{"type":"pong"}`)},
		{kind: framePing},
		{kind: frameClose, code: CloseSlowConsumer, raw: []byte("slow consumer")},
		{kind: frameRaw, raw: []byte("after the close")},
	})
	want := strings.Join([]string{
		`next live {"data":1}`,
		`next ended {"data":1}`,
		`raw {"type":"pong"}`,
		fmt.Sprintf("control %d %q", framePing, ""),
		"close 4010 slow consumer",
	}, "\n") + "\n"
	if string(b) != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", b, want)
	}
	if n != 3 {
		t.Errorf("messages = %d, want 3 (two payloads and the pong; pings and the close are not messages)", n)
	}
	if closeF == nil || closeF.code != CloseSlowConsumer {
		t.Errorf("close frame = %+v, want the 4010", closeF)
	}
}

// TestSendQueueLimits: the queue bounds frames and bytes; a client over
// either is a slow consumer: the queue is dropped, the 4010 is queued and
// the wire is told to hurry the end.
func TestSendQueueLimits(t *testing.T) {
	raw := func(n int) frame { return frame{kind: frameRaw, raw: make([]byte, n)} }
	payload := func(n int) frame {
		return frame{kind: frameNext, sub: &subscription{id: "s"}, payload: realtime.NewPayload(&realtime.Event{Data: make([]byte, n)}, nil)}
	}
	cases := []struct {
		name     string
		frames   int // SendQueue
		bytes    int // SendQueueBytes
		enqueue  []frame
		takeAt   int // take the queue after this many frames (0: never)
		accepted int // frames accepted before the overflow (all: no overflow)
	}{
		{name: "frames", frames: 3, bytes: 1 << 20, enqueue: []frame{raw(1), raw(1), raw(1), raw(1)}, accepted: 3},
		{name: "bytes", frames: 100, bytes: 10, enqueue: []frame{raw(4), raw(4), raw(4)}, accepted: 2},
		{name: "a payload counts its event's data", frames: 100, bytes: 10, enqueue: []frame{payload(6), payload(6)}, accepted: 1},
		{name: "one frame larger than the budget into an empty queue", frames: 100, bytes: 10, enqueue: []frame{raw(100), raw(1)}, accepted: 1},
		{name: "taken frames free their bytes", frames: 100, bytes: 10, enqueue: []frame{raw(4), raw(4), raw(4), raw(4)}, takeAt: 2, accepted: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, w := newTestSession(Options{SendQueue: tc.frames, SendQueueBytes: tc.bytes})
			accepted := 0
			for i, f := range tc.enqueue {
				if tc.takeAt > 0 && i == tc.takeAt {
					s.take(nil)
				}
				if !s.enqueue(f) {
					break
				}
				accepted++
			}
			if accepted != tc.accepted {
				t.Fatalf("accepted %d frames, want %d", accepted, tc.accepted)
			}
			overflow := accepted < len(tc.enqueue)
			if got := s.t.n.slowConsumers.Load(); got != map[bool]uint64{false: 0, true: 1}[overflow] {
				t.Errorf("slow consumer drops = %d (overflow expected: %v)", got, overflow)
			}
			if !overflow {
				return
			}
			q := s.frames[s.head:]
			if len(q) != 1 || q[0].kind != frameClose || q[0].code != CloseSlowConsumer || !s.closing {
				t.Errorf("queue after the overflow = %+v (closing %v), want the 4010 alone", q, s.closing)
			}
			if len(w.aborts) != 1 || !w.aborts[0] {
				t.Errorf("wire aborts = %v, want one slow abort", w.aborts)
			}
			if s.queued != len("slow consumer") {
				t.Errorf("queued bytes = %d, want the close reason's %d", s.queued, len("slow consumer"))
			}
		})
	}
}

// TestTakeKeepsBurstCapacity: a writer takes a whole queue by swapping
// slices with its scratch, so a queue grown by a burst keeps its capacity
// while the burst lasts — taking and refilling allocates nothing — and
// gives it up once idle.
func TestTakeKeepsBurstCapacity(t *testing.T) {
	s, _ := newTestSession(Options{})
	f := frame{kind: frameRaw, raw: []byte("x")}
	var scratch []frame
	burst := func() {
		scratch = s.take(scratch[:0])
		if len(scratch) != maxBatchFrames || s.queued != 0 {
			t.Fatalf("took %d frames leaving %d bytes counted, want %d and 0", len(scratch), s.queued, maxBatchFrames)
		}
		clear(scratch)
		for range maxBatchFrames {
			s.enqueue(f)
		}
	}
	for range maxBatchFrames {
		s.enqueue(f)
	}
	burst() // the writer's scratch and the queue have both grown
	if allocs := testing.AllocsPerRun(10, burst); allocs != 0 {
		t.Errorf("a take and a refill during a burst allocate %.0f times, want 0", allocs)
	}
	scratch = s.take(scratch[:0])
	clear(scratch)
	s.bg.Add(1) // what the releasing take below gives back
	s.take(scratch[:0])
	if s.flushing || cap(s.frames) > idleQueueCap {
		t.Errorf("idle session: flushing %v, queue capacity %d; want released, ≤ %d", s.flushing, cap(s.frames), idleQueueCap)
	}
}
