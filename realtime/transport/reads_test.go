package transport

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"
)

// opContinuation is the opcode of a message's later fragments.
const opContinuation = 0x0

// writeFragment sends one frame of a message: op is opText for the first
// fragment and opContinuation for the others; fin marks the last. Masked
// with the zero mask, as writeFrame.
func (c *rawConn) writeFragment(t testing.TB, op byte, fin bool, p []byte) {
	t.Helper()
	b0 := op
	if fin {
		b0 |= 0x80
	}
	hdr := []byte{b0, 0}
	switch n := len(p); {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n < 1<<16:
		hdr[1] = 0x80 | 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 0x80 | 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	hdr = append(hdr, 0, 0, 0, 0)
	if _, err := c.Write(append(hdr, p...)); err != nil {
		t.Errorf("raw write: %v", err)
	}
}

// untilClose reads frames until the server's close frame and returns its
// code and reason and when it arrived; it fails the test if none comes
// within 5s.
func (c *rawConn) untilClose(t testing.TB) (code int, reason string, at time.Time) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		op, p, err := c.nextFrame()
		if err != nil {
			t.Fatalf("waiting for the close frame: %v", err)
		}
		if op == opClose {
			code, reason := closeCode(p)
			return code, reason, time.Now()
		}
	}
	t.Fatal("no close frame within 5s")
	return 0, "", time.Time{}
}

// TestUnfinishedMessageIsClosed1008 is the attack of a client that starts
// a large message and never finishes it, pinging between fragments to look
// alive: the message must complete within MessageTimeout or the socket is
// closed 1008, the pings do not extend it, and the bytes it held are
// freed.
func TestUnfinishedMessageIsClosed1008(t *testing.T) {
	const (
		sockets = 8
		chunk   = 256 << 10 // held per socket by the first fragment
		timeout = time.Second
	)
	h := newHarness(t, func(o *Options) { o.MessageTimeout = timeout })
	addr := h.srv.Listener.Addr().String()
	tick := sweepTick(h.ws.opts)

	before, _ := inUse()
	conns := make([]*rawConn, sockets)
	for i := range conns {
		c := dialRaw(t, addr, 0)
		t.Cleanup(func() { _ = c.Close() })
		c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:alice"}}`)
		if op, p := c.readFrame(t); op != opText || !bytes.Contains(p, []byte("connection_ack")) {
			t.Fatalf("want connection_ack, got %d %q", op, p)
		}
		conns[i] = c
	}
	filler := bytes.Repeat([]byte("x"), chunk)
	start := time.Now()
	for _, c := range conns {
		c.writeFragment(t, opText, false, append([]byte(`{"type":"ping","payload":{"x":"`), filler...))
	}
	eventually(t, "the server holds the fragments", func() bool {
		held, _ := inUse()
		return held-before > sockets*chunk
	})

	// Pings and more fragments keep coming until the server closes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopSending := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSending()
	for _, c := range conns {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				_, _ = c.Write([]byte{0x80 | opPing, 0x80, 0, 0, 0, 0})
				_, _ = c.Write([]byte{opContinuation, 0x81, 0, 0, 0, 0, 'x'})
			}
		})
	}

	for i, c := range conns {
		code, reason, at := c.untilClose(t)
		if code != ClosePolicyViolation || !strings.Contains(reason, "not completed within 1s") {
			t.Errorf("socket %d: closed %d %q, want 1008 Message not completed within 1s", i, code, reason)
		}
		if d := at.Sub(start); d < timeout || d > timeout+tick+time.Second {
			t.Errorf("socket %d: closed after %v, want after %v and within a sweep tick (%v) plus a second", i, d, timeout, tick)
		}
	}
	eventually(t, "all torn down", func() bool { return h.ws.Stats().Connections == 0 && h.reg.Len() == 0 })
	stopSending()
	for _, c := range conns {
		_ = c.Close()
	}
	eventually(t, "the fragments are freed", func() bool {
		after, _ := inUse()
		return after-before < chunk
	})
}

// TestSweepTickServesMessageTimeout: a short MessageTimeout gets a tick
// fine enough to honour it.
func TestSweepTickServesMessageTimeout(t *testing.T) {
	if got := sweepTick(Options{MessageTimeout: 200 * time.Millisecond}.withDefaults()); got != 50*time.Millisecond {
		t.Errorf("tick %v, want 50ms", got)
	}
}

// TestFragmentedMessagesWithinTheTimeout: a message sent in fragments
// that completes in time is handled like any other, a character split
// between fragments is still UTF-8, and a connection idle between
// messages for longer than MessageTimeout is not closed for it.
func TestFragmentedMessagesWithinTheTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, func(o *Options) { o.MessageTimeout = timeout })
	c := dialRaw(t, h.srv.Listener.Addr().String(), 0)
	t.Cleanup(func() { _ = c.Close() })

	msg := []byte(`{"type":"ping","payload":{"name":"Zoë"}}`)
	cut := bytes.Index(msg, []byte("ë")) + 1 // inside the two bytes of ë
	c.writeFragment(t, opText, false, msg[:cut])
	time.Sleep(timeout / 3)
	c.writeFrame(t, opPing, "")
	c.writeFragment(t, opContinuation, true, msg[cut:])
	for {
		op, p := c.readFrame(t)
		if op == opClose {
			code, reason := closeCode(p)
			t.Fatalf("closed %d %q", code, reason)
		}
		if op == opText {
			if want := `{"type":"pong","payload":{"name":"Zoë"}}`; string(p) != want {
				t.Fatalf("got %s, want %s", p, want)
			}
			break
		}
	}

	time.Sleep(2 * timeout) // idle between messages: no deadline
	c.writeText(t, `{"type":"ping"}`)
	for {
		op, p := c.readFrame(t)
		if op == opClose {
			code, reason := closeCode(p)
			t.Fatalf("closed %d %q after an idle period", code, reason)
		}
		if op == opText {
			break
		}
	}
}

// TestInvalidUTF8IsClosed1007: RFC 6455 §8.1 — a text message that is
// not UTF-8 fails the connection with 1007, before and after
// connection_init, whether the bad byte is alone or splits a character
// across fragments.
func TestInvalidUTF8IsClosed1007(t *testing.T) {
	cases := []struct {
		name   string
		init   bool
		frames [][]byte
	}{
		{"before init", false, [][]byte{[]byte("{\"type\":\"connection_init\",\"payload\":{\"token\":\"ok:\xff\"}}")}},
		{"after init", true, [][]byte{[]byte("{\"type\":\"ping\",\"payload\":{\"x\":\"\xc3\x28\"}}")}},
		{"truncated character across fragments", true, [][]byte{[]byte("{\"type\":\"ping\",\"payload\":{\"x\":\"\xe2\x82"), []byte("\"}}")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			c := dialRaw(t, h.srv.Listener.Addr().String(), 0)
			t.Cleanup(func() { _ = c.Close() })
			if tc.init {
				c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:alice"}}`)
			}
			for i, f := range tc.frames {
				op := byte(opText)
				if i > 0 {
					op = opContinuation
				}
				c.writeFragment(t, op, i == len(tc.frames)-1, f)
			}
			code, reason, _ := c.untilClose(t)
			if code != CloseInvalidPayload || !strings.Contains(reason, "UTF-8") {
				t.Fatalf("closed %d %q, want 1007 (invalid UTF-8)", code, reason)
			}
			eventually(t, "torn down", func() bool { return h.ws.Stats().Connections == 0 })
		})
	}
}
