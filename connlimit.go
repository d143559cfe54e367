package main

import (
	"net"
	"sync"
	"syscall"
)

// The open-file limit is shared by everything the process opens: client
// connections, the database and its journal, log and certificate files.
// Connections may take all of it but fileReserve, so a flood of clients
// makes new ones wait instead of failing accept(2) with EMFILE and, worse,
// the store's next open. (Go already raises the soft limit to the hard
// one at start; this is what is left to guard.)
const (
	minFileReserve = 64
	maxAutoConns   = 1 << 24 // an unlimited RLIMIT_NOFILE
)

// fileReserve is how many descriptors are kept from connections under an
// open-file limit: a tenth, at least minFileReserve.
func fileReserve(limit int) int { return max(limit/10, minFileReserve) }

// autoMaxConns is MAX_CONNS when unset: the open-file limit minus its
// reserve (at least 1).
func autoMaxConns(limit int) int { return max(limit-fileReserve(limit), 1) }

// openFileLimit is the process's soft RLIMIT_NOFILE (at most
// maxAutoConns); 0 when unknown.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur, maxAutoConns))
}

// limitConns caps ln at MAX_CONNS open connections (by default what the
// open-file limit allows, see autoMaxConns).
func (m *Main) limitConns(ln net.Listener) net.Listener {
	n, limit := m.cfg.MaxConns, openFileLimit()
	switch {
	case limit == 0 && n == 0:
		m.log.Warn("open-file limit unknown and MAX_CONNS unset: connections are not capped")
		return ln
	case n == 0:
		n = autoMaxConns(limit)
	case limit > 0 && n > autoMaxConns(limit):
		m.log.Warn("MAX_CONNS leaves less than the reserve of the open-file limit: a flood of clients can exhaust file descriptors",
			"maxConns", n, "openFileLimit", limit, "reserve", fileReserve(limit))
	}
	m.log.Info("connections capped", "maxConns", n, "openFileLimit", limit)
	return newLimitListener(ln, n)
}

// limitListener accepts a connection only while fewer than its capacity
// are open; over it Accept waits (the kernel's backlog holds the newcomers)
// until one closes. golang.org/x/net/netutil.LimitListener's design,
// keeping *net.TCPConn's methods (raw writes, CloseWrite) visible.
type limitListener struct {
	net.Listener
	slots     chan struct{} // one element per open connection
	done      chan struct{} // closed by Close: Accept stops waiting
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &limitedTCPConn{TCPConn: tc, l: l}, nil
	}
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// release frees a slot, once per connection.
func (l *limitListener) release(once *sync.Once) { once.Do(func() { <-l.slots }) }

// limitedTCPConn is an accepted TCP connection holding a slot until closed.
type limitedTCPConn struct {
	*net.TCPConn
	l    *limitListener
	once sync.Once
}

func (c *limitedTCPConn) Close() error {
	err := c.TCPConn.Close()
	c.l.release(&c.once)
	return err
}

// limitedConn is limitedTCPConn for any other kind of connection.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.l.release(&c.once)
	return err
}
