package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/taskpulse/taskpulse/audit"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/realtime/transport"
)

// connObserver is the transports' Observer: it keeps the connection
// metrics and writes the connection records of the audit log.
type connObserver struct{ m *Main }

var _ transport.Observer = connObserver{}

func (o connObserver) Connected(c realtime.ConnInfo) {
	o.m.metrics.connections.WithLabelValues(oneOf(c.Transport, connTransports[:])).Inc()
	o.m.Audit.Log(audit.Record{Kind: audit.Connect, UserID: c.UserID, IP: c.IP, ConnID: c.ID,
		Transport: c.Transport, UserAgent: c.UserAgent})
}

func (o connObserver) AuthFailed(c realtime.ConnInfo, err error) {
	o.m.authFailed(audit.Record{IP: c.IP, ConnID: c.ID, Transport: c.Transport, UserAgent: c.UserAgent}, err)
}

func (o connObserver) Subscribed(c realtime.ConnInfo, f *ast.Field, vars map[string]any) {
	o.m.Audit.Log(audit.Record{Kind: audit.Subscribe, UserID: c.UserID, IP: c.IP, ConnID: c.ID,
		Transport: c.Transport, Operation: f.Name, Object: firstID(f.Definition, f.ArgumentMap(vars))})
}

func (o connObserver) Subscriptions(tr, field string, delta int) {
	o.m.metrics.subscriptions.WithLabelValues(oneOf(tr, connTransports[:]), field).Add(float64(delta))
}

func (o connObserver) Disconnected(c realtime.ConnInfo, code int, connected bool) {
	tr := oneOf(c.Transport, connTransports[:])
	o.m.metrics.disconnects.WithLabelValues(tr, codeLabel(code)).Inc()
	if !connected {
		return // refused or never initialised: its auth failure (if any) is recorded
	}
	o.m.metrics.connections.WithLabelValues(tr).Dec()
	o.m.Audit.Log(audit.Record{Kind: audit.Disconnect, UserID: c.UserID, IP: c.IP, ConnID: c.ID,
		Transport: c.Transport, CloseCode: code, Reason: closeMeaning(code)})
}

func (o connObserver) Delivered(tr string, commit time.Time) { o.m.metrics.observeLatency(tr, commit) }

// closeMeaning says what a close code means, in the README's words.
func closeMeaning(code int) string {
	switch code {
	case 1000:
		return "closed normally"
	case 1001:
		return "going away (server draining or shutting down)"
	case transport.CloseAbnormal:
		return "connection lost without a close frame (or an SSE client left)"
	case 1007:
		return "message not UTF-8"
	case 1008:
		return "policy violation (a message too slow, or blocked for abuse)"
	case transport.CloseMessageTooBig:
		return "message too big"
	case transport.CloseSlowConsumer:
		return "slow consumer"
	case transport.CloseBadRequest:
		return "invalid message"
	case transport.CloseUnauthorized:
		return "subscribe before connection_ack"
	case transport.CloseForbidden:
		return "forbidden (token refused or expired, user disabled, or disconnected by an admin)"
	case transport.CloseSubprotocolNotAccepted:
		return "subprotocol not acceptable"
	case transport.CloseInitTimeout:
		return "no connection_init in time"
	case transport.CloseSubscriberExists:
		return "subscriber id already in use"
	case transport.CloseTooManyInitRequests:
		return "more than one connection_init"
	case transport.CloseInternalError, 1011:
		return "internal error"
	}
	return "closed by the client"
}

// ---- authentication failures ----

// httpAuthFailed is auth.Options.OnFailure: a request answered 401 by the
// HTTP middleware (a bad or missing Authorization header).
func (m *Main) httpAuthFailed(r *http.Request, e *errs.Error) {
	m.authFailed(audit.Record{IP: m.clientIP(r), Transport: requestTransport(r), UserAgent: r.UserAgent()}, e)
}

// authFailed counts and records refused credentials; rec says where they
// came from. The reason is the server's text (errs messages of auth,
// which never quote a token); any other error is named by its class.
func (m *Main) authFailed(rec audit.Record, err error) {
	class := authFailureClass(err)
	m.metrics.authFailures.WithLabelValues(oneOf(rec.Transport, authTransports), class).Inc()
	rec.Kind = audit.AuthFailure
	var e *errs.Error
	var ce *transport.CloseError
	switch {
	case errors.As(err, &e):
		rec.Code, rec.Reason = string(e.Code), e.Message
	case errors.As(err, &ce) && ce.Code == transport.ClosePolicyViolation:
		// A blocked user or address (limits.authenticate): its reason is
		// the server's text, with the time left.
		rec.Code, rec.Reason = string(errs.RateLimited), ce.Reason
	default:
		rec.Code, rec.Reason = string(errs.Internal), class
	}
	m.Audit.Log(rec)
}

// authTransports are where credentials are refused: an HTTP request, or a
// connection's transport.
var authTransports = append([]string{"http"}, connTransports[:]...)

// authFailureClass is a bounded label for why credentials were refused.
func authFailureClass(err error) string {
	var e *errs.Error
	var ce *transport.CloseError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case errors.As(err, &ce) && ce.Code == transport.ClosePolicyViolation:
		return "blocked" // limits.authenticate: valid credentials, a blocked user or address
	case !errors.As(err, &e):
		return "internal"
	case e.Code == errs.Forbidden:
		return "forbidden" // a connection's credentials name two users
	case e.Code == errs.RateLimited:
		return "rate_limited"
	case e.Code != errs.Unauthenticated:
		return "internal"
	}
	msg := e.Message
	switch {
	case strings.Contains(msg, "missing token"):
		return "missing"
	case strings.Contains(msg, "expired"):
		return "expired"
	case strings.Contains(msg, "malformed"), strings.Contains(msg, "Authorization header"),
		strings.Contains(msg, "too long"):
		return "malformed"
	case strings.Contains(msg, "disabled"), strings.Contains(msg, "revoked"):
		return "revoked"
	case strings.Contains(msg, "does not exist"):
		return "unknown_user"
	}
	return "invalid"
}

// ---- where a request came from ----

type requestInfoKey struct{}

// requestInfo is what an HTTP request's records say about its origin.
type requestInfo struct{ ip, transport string }

// withRequestInfo puts the request's origin in its context, for the
// records of the operations it runs (a WebSocket's operations name their
// connection instead).
func (m *Main) withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), requestInfoKey{}, requestInfo{ip: m.clientIP(r), transport: requestTransport(r)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestTransport is "http", "sse" for an event stream, or the
// subprotocol a WebSocket upgrade asks for.
func requestTransport(r *http.Request) string {
	if websocket.IsWebSocketUpgrade(r) {
		for _, p := range websocket.Subprotocols(r) {
			if p == transport.ProtocolTransportWS || p == transport.ProtocolGraphQLWS {
				return p
			}
		}
		return transport.ProtocolTransportWS
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return transport.TransportSSE
	}
	return "http"
}

// ---- events ----

// firstID is the value of the first ID-typed argument of def present in
// args: the object an operation is about.
func firstID(def *ast.FieldDefinition, args map[string]any) string {
	if def == nil {
		return ""
	}
	for _, a := range def.Arguments {
		if a.Type.Name() != "ID" {
			continue
		}
		switch v := args[a.Name].(type) {
		case string:
			return v
		case *string:
			if v != nil {
				return *v
			}
		}
	}
	return ""
}
