// Package audit owns taskpulse's audit trail: one JSON line per
// security-relevant event (connections, authentication failures,
// subscriptions, denials, mutations, administrative disconnects, abuse
// blocks), written to AUDIT_LOG. Records carry ids, addresses, operation
// names and reasons chosen by the server — never a token, a secret or a
// message body — so the trail can be shipped and kept without becoming a
// leak of its own.
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// Kind names what a record is about.
type Kind string

// The kinds of record.
const (
	Connect        Kind = "connect"         // a WebSocket or SSE connection authenticated
	Disconnect     Kind = "disconnect"      // a connection closed (with its close code)
	AuthFailure    Kind = "auth_failure"    // a token was refused (reason, never the token)
	Subscribe      Kind = "subscribe"       // a subscription started
	Deny           Kind = "deny"            // an operation was refused (what and why)
	Mutation       Kind = "mutation"        // a mutation succeeded (who, what, which object)
	DisconnectUser Kind = "disconnect_user" // an admin closed a user's connections
	RateLimited    Kind = "rate_limited"    // an operation was refused RATE_LIMITED
	Block          Kind = "block"           // a user or IP was blocked for abuse
	Unblock        Kind = "unblock"         // a block ended
)

// Record is one audit line. Empty fields are left out.
type Record struct {
	Time      time.Time `json:"time"`
	Kind      Kind      `json:"kind"`
	UserID    string    `json:"userId,omitempty"`
	IP        string    `json:"ip,omitempty"`
	ConnID    string    `json:"connId,omitempty"`
	Transport string    `json:"transport,omitempty"`
	// UserAgent is a Connect's or an AuthFailure's User-Agent header, cut
	// to MaxUserAgent bytes.
	UserAgent string `json:"userAgent,omitempty"`
	// Operation is a GraphQL field (createTask, taskUpdates) or an HTTP
	// operation name the server recognised; never the document.
	Operation string `json:"operation,omitempty"`
	// Object is the id the operation was about (a task, project, user).
	Object string `json:"object,omitempty"`
	// Code is an error code (FORBIDDEN, RATE_LIMITED) or, for Disconnect, empty.
	Code string `json:"code,omitempty"`
	// CloseCode is the WebSocket close code of a Disconnect.
	CloseCode int `json:"closeCode,omitempty"`
	// Reason is the server's explanation (never client text).
	Reason string `json:"reason,omitempty"`
	// Count is how many (connections closed, refusals counted).
	Count int `json:"count,omitempty"`
	// Until is when a Block ends.
	Until time.Time `json:"until,omitzero"`
	// By is the acting user of an administrative record.
	By string `json:"by,omitempty"`
}

// Logger writes records as JSON lines. A nil *Logger discards records, so
// components may hold one unconditionally. It is safe for concurrent use;
// each record is one Write, so lines never interleave.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	err error // first write failure, reported once
	// onError is told of the first write failure (the process log).
	onError func(error)
}

// New returns a Logger writing to w. now may be nil (time.Now); onError,
// when set, is called once with the first write error.
func New(w io.Writer, now func() time.Time, onError func(error)) *Logger {
	if now == nil {
		now = time.Now
	}
	return &Logger{w: w, now: now, onError: onError}
}

// Open opens AUDIT_LOG's destination: "stderr" (or empty), "stdout", or a
// file path appended to (created 0600: the trail names users and
// addresses). The returned close function closes the file, if any.
func Open(dest string, onError func(error)) (*Logger, func() error, error) {
	switch dest {
	case "", "stderr":
		return New(os.Stderr, nil, onError), func() error { return nil }, nil
	case "stdout":
		return New(os.Stdout, nil, onError), func() error { return nil }, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("AUDIT_LOG: %w", err)
	}
	return New(f, nil, onError), f.Close, nil
}

// Bounds on the fields a client can choose (ids it sends, its user
// agent), so a record stays a line of bounded size. JSON escaping keeps
// any byte a client sends from breaking a line.
const (
	MaxUserAgent = 256
	MaxID        = 128 // service.MaxIDLen: a longer id is refused anyway
	MaxText      = 256
)

// Log writes r, stamping its time when unset.
func (l *Logger) Log(r Record) {
	if l == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = l.now().UTC()
	}
	r.UserID, r.Object, r.By = cut(r.UserID, MaxID), cut(r.Object, MaxID), cut(r.By, MaxID)
	r.ConnID, r.Operation = cut(r.ConnID, MaxID), cut(r.Operation, MaxID)
	r.UserAgent, r.Reason = cut(r.UserAgent, MaxUserAgent), cut(r.Reason, MaxText)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a reason's "<jwt>" stays readable; the line is not HTML
	if err := enc.Encode(r); err != nil {
		return // Record holds only plain fields: cannot happen
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(buf.Bytes()); err != nil && l.err == nil {
		l.err = err
		if l.onError != nil {
			l.onError(err)
		}
	}
}

// cut shortens s to at most n bytes, on a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
