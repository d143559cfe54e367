package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/testcert"
	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// tlsEnv is a real server with TLS_CERT_FILE and TLS_KEY_FILE set, and a
// client side that trusts its CA.
type tlsEnv struct {
	*env
	files *certFiles
	roots *x509.CertPool
	logs  *logBuffer // the server's warnings and errors
}

func startTLS(t *testing.T) *tlsEnv {
	t.Helper()
	files := newCertFiles(t)
	files.renew()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := Open(context.Background(), testConfig(t, map[string]string{"TLS_CERT_FILE": files.cert, "TLS_KEY_FILE": files.key}), log)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &tlsEnv{env: &env{t: t, m: m}, files: files, roots: files.ca.Pool(), logs: logs}
}

func (e *tlsEnv) addr() string { return strings.TrimPrefix(e.m.URL(), "https://") }

// client is an HTTPS client trusting the test CA; h2 offers HTTP/2 (and
// HTTP/1.1), otherwise HTTP/1.1 only. dials counts its TCP connections.
func (e *tlsEnv) client(h2 bool, dials *atomic.Int32) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.roots},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials != nil {
				dials.Add(1)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// postWith sends a GraphQL request as user with c; the response's body is
// read and closed.
func (e *tlsEnv) postWith(c *http.Client, user, query string) (*http.Response, gqlResponse) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token(user))
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST /graphql: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("response %d is not JSON: %s", res.StatusCode, raw)
	}
	return res, r
}

// createTaskWith creates a task for user over c and fails on any error.
func (e *tlsEnv) createTaskWith(c *http.Client, user, title string) {
	e.t.Helper()
	_, r := e.postWith(c, user, `mutation { createTask(input: {title: "`+title+`"}) { id } }`)
	if len(r.Errors) > 0 {
		e.t.Fatalf("createTask: %+v", r.Errors)
	}
}

// subscribeWSS opens a wss:// graphql-transport-ws subscription to
// taskUpdates as user.
func (e *tlsEnv) subscribeWSS(user string) *live {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "wss://" + e.addr() + "/graphql"
	c, err := wsclient.Dial(ctx, url, wsclient.DialOptions{TLSClientConfig: &tls.Config{RootCAs: e.roots}})
	if err != nil {
		e.t.Fatalf("dial %s: %v", url, err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Init(ctx, map[string]any{"token": e.token(user)}); err != nil {
		e.t.Fatalf("init: %v", err)
	}
	sub, err := c.Subscribe(ctx, "1", taskUpdatesQuery, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil { // the subscription is registered
		e.t.Fatal(err)
	}
	return &live{t: e.t, user: user, c: c, sub: sub}
}

// peerSerial is the serial of the certificate a new handshake gets.
func (e *tlsEnv) peerSerial() string {
	e.t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.addr(), &tls.Config{RootCAs: e.roots})
	if err != nil {
		e.t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return testcert.SerialHex(conn.ConnectionState().PeerCertificates[0])
}

// waitSerial waits until new handshakes get the certificate want.
func (e *tlsEnv) waitSerial(want string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.peerSerial()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("handshakes still get certificate %s, want %s", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTLSServesHTTPSAndWSS(t *testing.T) {
	e := startTLS(t)
	e.users("alice")
	if u := e.m.URL(); !strings.HasPrefix(u, "https://127.0.0.1:") {
		t.Fatalf("URL() = %s, want https://127.0.0.1:<port>", u)
	}

	t.Run("HTTP/2 when offered", func(t *testing.T) {
		res, r := e.postWith(e.client(true, nil), "alice", `{ me { id } }`)
		if res.StatusCode != 200 || string(r.Data) != `{"me":{"id":"alice"}}` {
			t.Fatalf("HTTPS query: %d %s %+v", res.StatusCode, r.Data, r.Errors)
		}
		if res.ProtoMajor != 2 || res.TLS.NegotiatedProtocol != "h2" {
			t.Fatalf("protocol %s (ALPN %q), want HTTP/2", res.Proto, res.TLS.NegotiatedProtocol)
		}
	})
	t.Run("HTTP/1.1 when not", func(t *testing.T) {
		res, r := e.postWith(e.client(false, nil), "alice", `{ me { id } }`)
		if res.StatusCode != 200 || res.ProtoMajor != 1 || string(r.Data) != `{"me":{"id":"alice"}}` {
			t.Fatalf("HTTP/1.1 query: %s %d %s", res.Proto, res.StatusCode, r.Data)
		}
	})
	t.Run("TLS 1.2 accepted, 1.1 refused", func(t *testing.T) {
		for _, v := range []struct {
			version uint16
			ok      bool
		}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
			conn, err := tls.Dial("tcp", e.addr(), &tls.Config{RootCAs: e.roots, MinVersion: v.version, MaxVersion: v.version})
			if err == nil {
				conn.Close()
			}
			if (err == nil) != v.ok {
				t.Errorf("TLS version %s: handshake error %v, want accepted=%v", tls.VersionName(v.version), err, v.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("TLS version %s refused with %v, want a protocol version alert", tls.VersionName(v.version), err)
			}
		}
	})
	t.Run("untrusted certificate refused by the client", func(t *testing.T) {
		_, err := http.Get(e.m.URL() + "/healthz")
		if ue := (x509.UnknownAuthorityError{}); !errors.As(err, &ue) {
			t.Fatalf("GET with the system roots = %v, want an unknown authority", err)
		}
	})
	t.Run("plain HTTP on the TLS port gets a clear 400", func(t *testing.T) {
		res, err := http.Get("http://" + e.addr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || !strings.Contains(string(body), "HTTPS server") {
			t.Fatalf("plain HTTP: %d %q", res.StatusCode, body)
		}
	})
	t.Run("WSS subscription", func(t *testing.T) {
		l := e.subscribeWSS("alice")
		e.createTaskWith(e.client(true, nil), "alice", "over wss")
		if ev := l.nextTask(); ev.Type != "TASK_CREATED" || ev.Task.Title != "over wss" {
			t.Fatalf("event %+v", ev)
		}
	})
	t.Run("WebSocket upgrade over HTTP/2 gets a clear 400", func(t *testing.T) {
		status, body, err := h2UpgradeAttempt(e.addr(), e.roots)
		if err != nil {
			t.Fatal(err)
		}
		if status != "400" || !strings.Contains(body, "not valid in HTTP/2") {
			t.Fatalf("upgrade over HTTP/2: status %s, body %q; want 400 saying why", status, body)
		}
	})
	// Failed handshakes (above: old versions, an untrusted certificate,
	// plain HTTP) are everyday noise on a public port: debug, not warnings.
	if n := e.logs.count("TLS handshake error"); n != 0 {
		t.Errorf("%d failed handshakes logged as warnings:\n%s", n, e.logs.String())
	}
}

// TestTLSSSEOverHTTP2: graphql-sse subscriptions are HTTP/2 streams of
// one connection (so browsers are not held to six per host), and events
// are flushed to each while it is open.
func TestTLSSSEOverHTTP2(t *testing.T) {
	e := startTLS(t)
	e.users("alice")
	var dials atomic.Int32
	c := e.client(true, &dials)
	const streams = 8
	got := make(chan int, streams*4)
	var protos sync.Map
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range streams {
		body := `{"query":"subscription { taskUpdates { type task { title } } }"}`
		req, _ := http.NewRequestWithContext(ctx, "POST", e.m.URL()+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+e.token("alice"))
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream %d: %d %s", i, res.StatusCode, res.Header.Get("Content-Type"))
		}
		protos.Store(i, res.Proto)
		wg.Go(func() {
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), "TASK_CREATED") {
					got <- i
				}
			}
		})
	}
	// A stream is live once its first event arrives; there is no earlier
	// sign, so tasks are created until every stream has had one.
	seen := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < streams {
		if time.Now().After(deadline) {
			t.Fatalf("events reached %d of %d open SSE streams", len(seen), streams)
		}
		e.createTaskWith(c, "alice", "sse over h2")
		wait := time.After(200 * time.Millisecond)
	drain:
		for {
			select {
			case i := <-got:
				seen[i] = true
			case <-wait:
				break drain
			}
		}
	}
	protos.Range(func(k, v any) bool {
		if v != "HTTP/2.0" {
			t.Errorf("stream %d: %s, want HTTP/2.0", k, v)
		}
		return true
	})
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d streams and the mutations took %d TCP connections, want 1", streams, n)
	}
}

// TestTLSCertificateRenewal: renewed files are used by new handshakes
// without a restart while open connections (WSS and HTTP/2) keep working;
// a broken renewal keeps the certificate in use.
func TestTLSCertificateRenewal(t *testing.T) {
	e := startTLS(t)
	e.users("alice")
	first := e.peerSerial()
	l := e.subscribeWSS("alice")
	h2 := e.client(true, nil)
	e.createTaskWith(h2, "alice", "before")
	if ev := l.nextTask(); ev.Task.Title != "before" {
		t.Fatalf("event %+v", ev)
	}

	second := e.files.renew()
	if second == first {
		t.Fatal("renewal made the same serial")
	}
	e.waitSerial(second)

	// The HTTP/2 connection from before the renewal is reused, and the
	// WSS subscription from before it still delivers.
	var reused atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused.Store(i.Reused) }}
	body := `{"query":"mutation { createTask(input: {title: \"after\"}) { id } }"}`
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", e.m.URL()+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token("alice"))
	res, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got := testcert.SerialHex(res.TLS.PeerCertificates[0]); res.StatusCode != 200 || !reused.Load() || got != first {
		t.Fatalf("HTTP/2 connection from before the renewal: %d, reused %v, certificate %s (want %s)", res.StatusCode, reused.Load(), got, first)
	}
	if ev := l.nextTask(); ev.Task.Title != "after" {
		t.Fatalf("open WSS subscription after renewal: event %+v", ev)
	}
	// A new WSS connection handshakes with the new certificate.
	l2 := e.subscribeWSS("alice")
	e.createTaskWith(h2, "alice", "new socket")
	if ev := l2.nextTask(); ev.Task.Title != "new socket" {
		t.Fatalf("new WSS subscription: event %+v", ev)
	}
	l.nextTask()

	// A renewal caught half-written (the certificate truncated in place)
	// is refused with a warning; the certificate in use stays.
	third := e.files.issue(time.Time{}, time.Time{})
	if err := testcert.WriteFile(e.files.cert, third.CertPEM[:len(third.CertPEM)/2]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.logs.count(refusedMsg) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the broken files; logs:\n%s", e.logs.String())
		}
		e.peerSerial() // a handshake starts the look
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.peerSerial(); got != second {
		t.Fatalf("after a broken renewal handshakes get %s, want the previous %s", got, second)
	}
	e.createTaskWith(h2, "alice", "still")
	if ev := l.nextTask(); ev.Task.Title != "still" {
		t.Fatalf("after a broken renewal: event %+v", ev)
	}
	// Completing the renewal is picked up.
	if err := third.WriteFiles(e.files.cert, e.files.key); err != nil {
		t.Fatal(err)
	}
	e.waitSerial(testcert.SerialHex(third.Cert))
}

// h2UpgradeAttempt sends, over an HTTP/2 connection, the GET a WebSocket
// client sends over HTTP/1.1 (Go's and Node's HTTP/2 clients refuse to),
// and returns the response's :status and body. HPACK is written by hand:
// literal fields, not indexed, no Huffman coding.
func h2UpgradeAttempt(addr string, roots *x509.CertPool) (status, body string, err error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		return "", "", errors.New("ALPN chose " + p + ", not h2")
	}
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second)) // a hang fails the test
	var block []byte
	for _, f := range [][2]string{
		{":method", "GET"}, {":scheme", "https"}, {":path", "/graphql"}, {":authority", addr},
		{"connection", "Upgrade"}, {"upgrade", "websocket"}, {"sec-websocket-version", "13"},
		{"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="}, {"sec-websocket-protocol", "graphql-transport-ws"},
	} {
		block = append(block, 0x00, byte(len(f[0])))
		block = append(append(block, f[0]...), byte(len(f[1])))
		block = append(block, f[1]...)
	}
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		n := len(payload)
		h := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
		return append(h, payload...)
	}
	out := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	out = append(out, frame(0x4, 0, 0, nil)...)     // SETTINGS
	out = append(out, frame(0x1, 0x5, 1, block)...) // HEADERS, END_STREAM|END_HEADERS
	if _, err := conn.Write(out); err != nil {
		return "", "", err
	}
	// The static table's :status entries (RFC 7541 appendix A).
	statuses := map[byte]string{8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}
	r := bufio.NewReader(conn)
	for {
		h := make([]byte, 9)
		if _, err := io.ReadFull(r, h); err != nil {
			return status, body, err
		}
		payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
		if _, err := io.ReadFull(r, payload); err != nil {
			return status, body, err
		}
		typ, flags, stream := h[3], h[4], uint32(h[5]&0x7f)<<24|uint32(h[6])<<16|uint32(h[7])<<8|uint32(h[8])
		switch {
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledge
			if _, err := conn.Write(frame(0x4, 0x1, 0, nil)); err != nil {
				return "", "", err
			}
		case typ == 0x1 && stream == 1: // HEADERS: :status comes first
			status = "literal"
			if len(payload) > 0 && payload[0]&0x80 != 0 {
				status = statuses[payload[0]&0x7f]
			}
		case typ == 0x0 && stream == 1: // DATA
			body += string(payload)
			if flags&0x1 != 0 {
				return status, body, nil
			}
		case typ == 0x3 && stream == 1:
			return "RST_STREAM", body, nil
		case typ == 0x7:
			return "GOAWAY", body, nil
		}
	}
}
