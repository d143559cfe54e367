package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
)

// allowedMethods are the methods /graphql serves: GET (queries, the
// WebSocket upgrade, SSE), POST (everything), OPTIONS (CORS preflights and
// gqlgen's Allow answer).
const allowedMethods = "GET, POST, OPTIONS"

// bodyDeadline gives every request with a body HTTPBodyTimeout to send
// it, on every route: a handler that ignores a body still has net/http
// read (up to 256 KiB of) it before answering, and a client trickling it
// would hold the connection for ever. limitRequests lifts the deadline on
// /graphql once the body is in; net/http sets its own for the next request
// on the connection.
func (m *Main) bodyDeadline(next http.Handler) http.Handler {
	timeout := m.cfg.HTTPBodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}

// limitRequests is the front door of /graphql: what a request must be
// before anything authenticates, decodes or parses it.
//   - A method other than GET, POST and OPTIONS: 405 with Allow.
//   - An authenticated request's body is read whole here, under
//     bodyDeadline's read deadline (slower: 408 and the connection
//     closed, so a client trickling bytes
//     cannot hold a connection, and its file descriptor, for ever) and
//     within HTTPMaxBody (larger: 413, declared or chunked). The deadline
//     is lifted once the body is in, so an SSE stream after it is not cut.
//   - A JSON POST whose body is not a GraphQL request: 400, without the
//     body (gqlgen's POST transport quotes the whole body in that error).
func (m *Main) limitRequests(next http.Handler) http.Handler {
	maxBody, timeout := m.cfg.HTTPMaxBody, m.cfg.HTTPBodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodOptions:
		default:
			w.Header().Set("Allow", allowedMethods)
			writeRefusal(w, http.StatusMethodNotAllowed, "method not allowed: use GET or POST")
			return
		}
		if r.ContentLength > maxBody {
			writeRefusal(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBody))
			return
		}
		var body []byte
		if _, ok := auth.ViewerFrom(r.Context()); !ok {
			// Anonymous here is a request without a document (OPTIONS, a
			// WebSocket upgrade: anonymousAllowed): its body is not read.
			// Read, it held up to HTTP_MAX_BODY per connection for
			// HTTP_BODY_TIMEOUT before anyone was authenticated.
			next.ServeHTTP(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			var status int
			var msg string
			if body, status, msg = readBody(w, r, maxBody, timeout); status != 0 {
				if status == http.StatusRequestTimeout && r.ProtoMajor == 1 {
					w.Header().Set("Connection", "close") // what is left of the body is not worth waiting for
				}
				writeRefusal(w, status, msg)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		if r.Method == http.MethodPost && isJSON(r) && !wantsEventStream(r) && !isGraphQLRequest(body) {
			writeRefusal(w, http.StatusBadRequest, `the request body is not a GraphQL request: want a JSON object {"query": string, "operationName"?: string, "variables"?: object, "extensions"?: object}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads r's body, under the read deadline bodyDeadline set (of
// timeout) and within maxBody. On failure it returns the status and
// message to answer.
func readBody(w http.ResponseWriter, r *http.Request, maxBody int64, timeout time.Duration) ([]byte, int, string) {
	rc := http.NewResponseController(w)
	buf := bytes.NewBuffer(make([]byte, 0, max(min(r.ContentLength, maxBody), 0)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		// The connection closes after the answer: net/http must not wait
		// for the rest of the body first (it reads up to 256 KiB of it).
		_ = rc.SetReadDeadline(time.Now())
	} else {
		// Lifted before the handler runs: net/http's background read,
		// started when the body ended, would cancel the request when it
		// fires.
		_ = rc.SetReadDeadline(time.Time{})
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBody)
	case errors.Is(err, os.ErrDeadlineExceeded) || err == nil && r.Context().Err() != nil:
		// (The second: the deadline fired in net/http's background read,
		// between the body's end and its lifting — or the client left;
		// there is nothing to serve either way.)
		return nil, http.StatusRequestTimeout, fmt.Sprintf("request body did not arrive within %v", timeout)
	case err != nil:
		return nil, http.StatusBadRequest, "request body could not be read"
	}
	return buf.Bytes(), 0, ""
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// isGraphQLRequest reports whether body decodes as gqlgen's POST
// transport decodes it (encoding/json into graphql.RawParams): a JSON
// value whose query and operationName are strings (or null) and whose
// variables and extensions are objects (or null). It checks the shape
// without building the values.
func isGraphQLRequest(body []byte) bool {
	var p struct {
		Query         stringOrNull `json:"query"`
		OperationName stringOrNull `json:"operationName"`
		Variables     objectOrNull `json:"variables"`
		Extensions    objectOrNull `json:"extensions"`
	}
	return json.NewDecoder(bytes.NewReader(body)).Decode(&p) == nil
}

// stringOrNull and objectOrNull accept a JSON value of their kind, or
// null, without decoding it (encoding/json has checked its syntax first).
type (
	stringOrNull struct{}
	objectOrNull struct{}
)

func (*stringOrNull) UnmarshalJSON(b []byte) error { return kindOrNull(b, '"') }
func (*objectOrNull) UnmarshalJSON(b []byte) error { return kindOrNull(b, '{') }

func kindOrNull(b []byte, first byte) error {
	if len(b) > 0 && (b[0] == first || string(b) == "null") {
		return nil
	}
	return errors.New("wrong JSON type")
}

// writeRefusal answers status with one GraphQL error (BAD_USER_INPUT), the
// shape clients already handle.
func writeRefusal(w http.ResponseWriter, status int, msg string) {
	type extensions struct {
		Code errs.Code `json:"code"`
	}
	type gqlErr struct {
		Message    string     `json:"message"`
		Extensions extensions `json:"extensions"`
	}
	b, _ := json.Marshal(struct {
		Errors []gqlErr `json:"errors"`
	}{[]gqlErr{{Message: msg, Extensions: extensions{Code: errs.BadUserInput}}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
