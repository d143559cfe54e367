package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestAnonymousBodiesAreNotRead: the requests that reach /graphql without
// a token (OPTIONS, a WebSocket upgrade) carry no document, and their
// bodies must not be read: before, each was read into memory (up to
// HTTP_MAX_BODY) and held while its last byte was withheld, for
// HTTP_BODY_TIMEOUT. 300 anonymous OPTIONS of 1 MiB less a byte held
// +300 MiB of RSS. Here 32 are sent, and the heap kept while they wait is
// measured; each still gets its answer.
func TestAnonymousBodiesAreNotRead(t *testing.T) {
	e := start(t, nil)
	addr := strings.TrimPrefix(e.m.URL(), "http://")
	const n, size = 32, 1 << 20
	head := []byte(fmt.Sprintf("OPTIONS /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size))
	body := []byte("{" + strings.Repeat(" ", size-2)) // shared: the test's own bytes are not counted
	runtime.GC()
	before := heapObjects()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	answers := make(chan string, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		go func() {
			// The whole body but its last byte; errors are the server
			// closing early, which is fine.
			if _, err := c.Write(head); err == nil {
				_, _ = c.Write(body)
			}
		}()
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- err.Error()
				return
			}
			res.Body.Close()
			answers <- res.Status
		}()
	}
	time.Sleep(500 * time.Millisecond) // the bytes sent are in
	grew := heapObjects() - before
	t.Logf("heap +%d MiB with %d anonymous 1 MiB bodies waiting for their last byte", grew>>20, n)
	if grew > 8<<20 {
		t.Fatalf("heap +%d MiB: anonymous bodies were read", grew>>20)
	}
	for range n {
		if a := <-answers; !strings.HasPrefix(a, "200") && !strings.HasPrefix(a, "204") {
			t.Fatalf("OPTIONS answered %q", a)
		}
	}
}
