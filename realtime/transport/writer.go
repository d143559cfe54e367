package transport

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// writerPool is a transport's shared writers: a few long-lived goroutines
// that write the queued frames of any session whose wire can write
// without waiting (wire.tryWrite). A session with frames is in the pool's
// queue at most once; a worker takes it, writes its queued frames as one
// write(2) and moves on. A worker never waits for a client: when a
// socket's send buffer is full, the rest of the batch goes to a goroutine
// of that session's own (session.finish), which waits for the client under
// a deadline while the workers serve everyone else. Long-lived workers keep
// their grown stacks, so a delivery costs no goroutine start and no stack
// growth, and no write deadline is set while a socket keeps up.
type writerPool struct {
	sent *atomic.Uint64 // the transport's FramesSent: a worker adds once per visit

	mu      sync.Mutex
	wake    sync.Cond
	queue   []*session // queue[head:] wait for a worker
	head    int
	idle    int // workers waiting in wake.Wait
	size    int // workers to run once started
	started bool
	closed  bool
	done    sync.WaitGroup
}

// poolTake is how many queued sessions a worker takes per visit of the
// pool's lock: enough to amortize it during a fan-out, few enough that the
// other workers get their share.
const poolTake = 16

func newWriterPool(sent *atomic.Uint64) *writerPool {
	p := &writerPool{sent: sent, size: max(2, runtime.GOMAXPROCS(0))}
	p.wake.L = &p.mu
	return p
}

// push queues s, whose writing the caller owns (session.flushing), for a
// worker. False if the pool is closed: the caller writes itself.
func (p *writerPool) push(s *session) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if !p.started {
		// Started on first use: a transport that never writes runs none.
		p.started = true
		p.done.Add(p.size)
		for range p.size {
			go p.work()
		}
	}
	if p.head > 0 && len(p.queue) == cap(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, s)
	if p.idle > 0 {
		p.wake.Signal()
	}
	p.mu.Unlock()
	return true
}

func (p *writerPool) work() {
	defer p.done.Done()
	var sc scratch
	batch := make([]*session, 0, poolTake)
	for {
		p.mu.Lock()
		for p.head == len(p.queue) {
			if p.closed {
				p.mu.Unlock()
				return
			}
			p.idle++
			p.wake.Wait()
			p.idle--
		}
		n := min(len(p.queue)-p.head, poolTake)
		batch = append(batch[:0], p.queue[p.head:p.head+n]...)
		clear(p.queue[p.head : p.head+n])
		p.head += n
		if p.head == len(p.queue) {
			if cap(p.queue) > 1<<16 {
				p.queue = nil // a burst's worth of queue is not kept for ever
			}
			p.queue, p.head = p.queue[:0], 0
		}
		p.mu.Unlock()

		for i, s := range batch {
			batch[i] = nil
			if s.flush(&sc, false) && !p.push(s) {
				go s.flushAll() // more frames, but the pool closed meanwhile
			}
		}
		// One shared atomic per visit, not per batch: the workers would
		// otherwise contend for its cache line on every delivery.
		if sc.sent != 0 {
			p.sent.Add(sc.sent)
			sc.sent = 0
		}
	}
}

// close stops the workers once the queue is empty, waiting at most d for
// them (a worker can only be held up by an event's rendering); false if
// they have not stopped. Sessions pushed afterwards are written by
// goroutines of their own.
func (p *writerPool) close(d time.Duration) bool {
	p.mu.Lock()
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	stopped := make(chan struct{})
	go func() {
		p.done.Wait()
		close(stopped)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stopped:
		return true
	case <-t.C:
		return false
	}
}

// scratch is a writer's reusable memory: the frames of the batch being
// written and the bytes they make; and the messages it has written and
// not yet added to the transport's FramesSent.
type scratch struct {
	frames []frame
	buf    []byte
	raw    rawWrite
	sent   uint64
}

// maxBatchFrames bounds the frames one write takes from a session's queue.
const maxBatchFrames = 64

// maxKeptBuf is the largest batch buffer a writer keeps for reuse.
const maxKeptBuf = 64 << 10

func (sc *scratch) keep(b []byte) {
	if cap(b) <= maxKeptBuf {
		sc.buf = b[:0]
	} else {
		sc.buf = nil
	}
}

// rawWrite writes without waiting through a syscall.RawConn: write(2)
// until the bytes are written or the socket's send buffer is full. Its fn
// is made once per writer, so a write allocates nothing.
type rawWrite struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// write writes a prefix of b to rc without waiting for the peer: n <
// len(b) with a nil error means the socket's send buffer is full.
func (w *rawWrite) write(rc syscall.RawConn, b []byte) (int, error) {
	if w.fn == nil {
		w.fn = w.do
	}
	w.b, w.n, w.err = b, 0, nil
	err := rc.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.b, w.err = nil, nil
	return n, err
}

// ---- WebSocket framing (RFC 6455 §5.2; a server's frames are unmasked) ----

// closeNoStatus is the code gorilla reports for a close frame without a
// status; its echo is a close frame without one (RFC 6455 §7.4.1).
const closeNoStatus = 1005

// WebSocket opcodes the server sends.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// appendFrameHeader appends the header of a final, unmasked frame with
// opcode op and a payload of n bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// appendCloseFrame appends a close frame with code and reason (reason
// already truncated to fit). CloseNoStatusReceived has no payload.
func appendCloseFrame(b []byte, code int, reason string) []byte {
	if code == closeNoStatus {
		return appendFrameHeader(b, opClose, 0)
	}
	b = appendFrameHeader(b, opClose, 2+len(reason))
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...)
}
