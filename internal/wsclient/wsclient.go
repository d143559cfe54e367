// Package wsclient is a small graphql-ws client for tests: it speaks
// graphql-transport-ws and enough of the legacy graphql-ws
// (subscriptions-transport-ws) protocol, over a real gorilla/websocket
// connection. One reader goroutine demultiplexes server messages by
// operation id into unbounded per-subscription mailboxes, so no message is
// lost however slowly a test reads; Close stops it.
package wsclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocols.
const (
	ProtocolTransportWS = "graphql-transport-ws"
	ProtocolGraphQLWS   = "graphql-ws" // legacy subscriptions-transport-ws
)

// DialOptions configures Dial.
type DialOptions struct {
	// Subprotocol offered; default graphql-transport-ws.
	Subprotocol string
	// NoSubprotocol offers none (to test the server's refusal).
	NoSubprotocol bool
	// Header is sent with the upgrade request (Authorization, Origin, …).
	Header http.Header
	// NetDialContext, if set, makes the TCP connection (e.g. with a small
	// receive buffer, to play a slow client).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// IgnorePings makes the client a silent peer: server pings are counted
	// but not answered.
	IgnorePings bool
	// TLSClientConfig is used for wss:// URLs (e.g. RootCAs trusting a
	// test certificate); nil means the system roots. ALPN is left out, so
	// the upgrade goes over HTTP/1.1 as it must.
	TLSClientConfig *tls.Config
}

// Message is one server message.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// Raw is the message as received.
	Raw []byte `json:"-"`
}

// GQLError is one GraphQL error.
type GQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Code returns extensions.code.
func (e GQLError) Code() string {
	s, _ := e.Extensions["code"].(string)
	return s
}

// Result is one execution result (a next/data message's payload).
type Result struct {
	Data   json.RawMessage `json:"data"`
	Errors []GQLError      `json:"errors,omitempty"`
}

// CloseError is how the server closed the connection.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "websocket closed: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// OperationError is an `error` message for an operation.
type OperationError struct {
	Errors []GQLError
}

func (e *OperationError) Error() string {
	if len(e.Errors) == 0 {
		return "operation error"
	}
	return "operation error: " + e.Errors[0].Message
}

// ConnectionError is a legacy `connection_error` message.
type ConnectionError struct {
	Payload json.RawMessage
}

func (e *ConnectionError) Error() string { return "connection_error: " + string(e.Payload) }

// ErrCompleted is returned by Sub.Next after the server's complete.
var ErrCompleted = errors.New("wsclient: operation completed")

// ErrClosed is returned when the connection ended without a close frame.
var ErrClosed = errors.New("wsclient: connection closed")

// Client is one graphql-ws connection.
type Client struct {
	ws     *websocket.Conn
	legacy bool

	wmu sync.Mutex // gorilla allows one writer at a time

	mu    sync.Mutex
	subs  map[string]*Sub
	inbox *mailbox // messages for no registered operation

	pings      atomic.Int64
	keepAlives atomic.Int64
	nextID     atomic.Int64

	done     chan struct{} // closed when the reader exits
	closeErr *CloseError   // set before done closes
	readErr  error
	close1   sync.Once
}

// Dial opens a WebSocket to url (ws://… or wss://…).
func Dial(ctx context.Context, url string, opts DialOptions) (*Client, error) {
	proto := opts.Subprotocol
	if proto == "" {
		proto = ProtocolTransportWS
	}
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext:   opts.NetDialContext,
		TLSClientConfig:  opts.TLSClientConfig,
	}
	if !opts.NoSubprotocol {
		d.Subprotocols = []string{proto}
	}
	ws, resp, err := d.DialContext(ctx, url, opts.Header)
	if err != nil {
		if resp != nil {
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Err: err}
		}
		return nil, err
	}
	c := &Client{
		ws:     ws,
		legacy: ws.Subprotocol() == ProtocolGraphQLWS,
		subs:   make(map[string]*Sub),
		inbox:  newMailbox(),
		done:   make(chan struct{}),
	}
	ws.SetPingHandler(func(data string) error {
		c.pings.Add(1)
		if opts.IgnorePings {
			return nil
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	go c.read()
	return c, nil
}

// HandshakeError is a refused upgrade.
type HandshakeError struct {
	StatusCode int
	Err        error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake: HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Subprotocol is the negotiated subprotocol ("" if none).
func (c *Client) Subprotocol() string { return c.ws.Subprotocol() }

// PingsReceived counts the server's WebSocket ping frames.
func (c *Client) PingsReceived() int64 { return c.pings.Load() }

// KeepAlives counts legacy "ka" messages.
func (c *Client) KeepAlives() int64 { return c.keepAlives.Load() }

func (c *Client) read() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeErr = &CloseError{Code: ce.Code, Reason: ce.Text}
			}
			c.readErr = err
			c.mu.Lock()
			subs := c.subs
			c.subs = map[string]*Sub{}
			c.mu.Unlock()
			for _, s := range subs {
				s.box.close()
			}
			c.inbox.close()
			return
		}
		m := Message{Raw: data}
		if typ != websocket.TextMessage || json.Unmarshal(data, &m) != nil {
			c.inbox.put(m)
			continue
		}
		if m.Type == "ka" {
			c.keepAlives.Add(1)
			continue
		}
		c.mu.Lock()
		s := c.subs[m.ID]
		if s != nil && m.ID != "" {
			switch m.Type {
			case "complete", "error":
				delete(c.subs, m.ID) // the id is free again
			}
		}
		c.mu.Unlock()
		if s != nil && m.ID != "" {
			s.box.put(m)
		} else {
			c.inbox.put(m)
		}
	}
}

// err is why the connection ended.
func (c *Client) err() error {
	<-c.done
	if c.closeErr != nil {
		return c.closeErr
	}
	return fmt.Errorf("%w: %v", ErrClosed, c.readErr)
}

func (c *Client) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.WriteRaw(string(b))
}

// WriteRaw sends s as a text message.
func (c *Client) WriteRaw(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

// WriteBinary sends b as a binary message.
func (c *Client) WriteBinary(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// ReadMessage returns the next message that belongs to no subscription of
// this client (acks, pongs, messages for unknown ids, unparsable ones).
func (c *Client) ReadMessage(ctx context.Context) (Message, error) {
	m, ok, err := c.inbox.take(ctx, nil)
	if err != nil {
		return Message{}, err
	}
	if !ok {
		return Message{}, c.err()
	}
	return m, nil
}

// Init sends connection_init with payload and waits for connection_ack. A
// close instead returns a *CloseError; a legacy connection_error a
// *ConnectionError.
func (c *Client) Init(ctx context.Context, payload any) error {
	msg := map[string]any{"type": "connection_init"}
	if payload != nil {
		msg["payload"] = payload
	}
	if err := c.writeJSON(msg); err != nil {
		return err
	}
	m, ok, err := c.inbox.take(ctx, func(m Message) bool {
		return m.Type == "connection_ack" || m.Type == "connection_error"
	})
	if err != nil {
		return err
	}
	if !ok {
		return c.err()
	}
	if m.Type == "connection_error" {
		return &ConnectionError{Payload: m.Payload}
	}
	return nil
}

// Ping sends a protocol ping and waits for the pong.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.writeJSON(map[string]any{"type": "ping"}); err != nil {
		return err
	}
	_, ok, err := c.inbox.take(ctx, func(m Message) bool { return m.Type == "pong" })
	if err != nil {
		return err
	}
	if !ok {
		return c.err()
	}
	return nil
}

// Request is a GraphQL request.
type Request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

// Sub is one operation started by Subscribe.
type Sub struct {
	c   *Client
	ID  string
	box *mailbox

	mu  sync.Mutex
	end error // ErrCompleted or *OperationError once Next has returned it
}

// Subscribe starts an operation (a subscription, or a query/mutation)
// with id.
func (c *Client) Subscribe(ctx context.Context, id, query string, vars map[string]any) (*Sub, error) {
	return c.SubscribeRequest(ctx, id, Request{Query: query, Variables: vars})
}

// SubscribeRequest is Subscribe with an operation name and extensions. An
// id still in use by an operation of this client (not completed, not
// ended by the server) is an error: its messages could not be told apart.
func (c *Client) SubscribeRequest(ctx context.Context, id string, req Request) (*Sub, error) {
	s := &Sub{c: c, ID: id, box: newMailbox()}
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return nil, c.err()
	default:
	}
	if _, busy := c.subs[id]; busy {
		c.mu.Unlock()
		return nil, fmt.Errorf("wsclient: operation id %q is in use", id)
	}
	c.subs[id] = s
	c.mu.Unlock()
	typ := "subscribe"
	if c.legacy {
		typ = "start"
	}
	if err := c.writeJSON(map[string]any{"id": id, "type": typ, "payload": req}); err != nil {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// Next returns the operation's next result. After the server's complete it
// returns ErrCompleted; after an error message, *OperationError — and the
// same again on every later call; if the connection ends, its *CloseError
// (or ErrClosed).
func (s *Sub) Next(ctx context.Context) (Result, error) {
	s.mu.Lock()
	end := s.end
	s.mu.Unlock()
	if end != nil {
		return Result{}, end
	}
	m, ok, err := s.box.take(ctx, nil)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, s.c.err()
	}
	r, err := s.decode(m)
	switch {
	case errors.Is(err, ErrCompleted), errors.As(err, new(*OperationError)):
		s.mu.Lock()
		s.end = err
		s.mu.Unlock()
	}
	return r, err
}

// decode turns one of the operation's messages into Next's answer.
func (s *Sub) decode(m Message) (Result, error) {
	switch m.Type {
	case "next", "data":
		var r Result
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			return Result{}, fmt.Errorf("wsclient: bad %s payload %s: %w", m.Type, m.Payload, err)
		}
		return r, nil
	case "complete":
		return Result{}, ErrCompleted
	case "error":
		oe := &OperationError{}
		if json.Unmarshal(m.Payload, &oe.Errors) != nil {
			// Some legacy servers send one error object.
			var one GQLError
			if err := json.Unmarshal(m.Payload, &one); err != nil {
				return Result{}, fmt.Errorf("wsclient: bad error payload %s", m.Payload)
			}
			oe.Errors = []GQLError{one}
		}
		return Result{}, oe
	default:
		return Result{}, fmt.Errorf("wsclient: unexpected message %s", m.Raw)
	}
}

// Complete stops the operation (legacy: stop).
func (s *Sub) Complete() error {
	s.c.mu.Lock()
	if s.c.subs[s.ID] == s {
		delete(s.c.subs, s.ID)
	}
	s.c.mu.Unlock()
	typ := "complete"
	if s.c.legacy {
		typ = "stop"
	}
	return s.c.writeJSON(map[string]any{"id": s.ID, "type": typ})
}

// Execute runs a query or mutation over the socket and returns its result,
// after checking that complete follows.
func (c *Client) Execute(ctx context.Context, query string, vars map[string]any) (Result, error) {
	id := "op-" + strconv.FormatInt(c.nextID.Add(1), 10)
	s, err := c.Subscribe(ctx, id, query, vars)
	if err != nil {
		return Result{}, err
	}
	r, err := s.Next(ctx)
	if err != nil {
		return Result{}, err
	}
	if _, err := s.Next(ctx); !errors.Is(err, ErrCompleted) {
		return r, fmt.Errorf("wsclient: expected complete after the result, got %v", err)
	}
	return r, nil
}

// WaitClose waits until the connection ends and returns the server's close
// frame, or an error if it ended without one (or ctx ended first).
func (c *Client) WaitClose(ctx context.Context) (*CloseError, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.closeErr != nil {
		return c.closeErr, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrClosed, c.readErr)
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close closes the connection (1000), waits briefly for the server's
// answer, and stops the reader. It is idempotent.
func (c *Client) Close() error {
	c.close1.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
		_ = c.ws.Close()
		<-c.done
	})
	return nil
}

// mailbox is an unbounded FIFO of messages with a blocking, optionally
// filtered take. Every change closes and replaces changed, so any number
// of waiters wake.
type mailbox struct {
	mu      sync.Mutex
	items   []Message
	closed  bool
	changed chan struct{}
}

func newMailbox() *mailbox { return &mailbox{changed: make(chan struct{})} }

func (b *mailbox) put(m Message) {
	b.mu.Lock()
	b.items = append(b.items, m)
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *mailbox) close() {
	b.mu.Lock()
	b.closed = true
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *mailbox) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// take removes and returns the first message matching match (any if nil).
// ok is false if the mailbox closed with no match.
func (b *mailbox) take(ctx context.Context, match func(Message) bool) (m Message, ok bool, err error) {
	for {
		b.mu.Lock()
		for i, it := range b.items {
			if match == nil || match(it) {
				b.items = slices.Delete(b.items, i, i+1)
				b.mu.Unlock()
				return it, true, nil
			}
		}
		closed, changed := b.closed, b.changed
		b.mu.Unlock()
		if closed {
			return Message{}, false, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, false, ctx.Err()
		}
	}
}
