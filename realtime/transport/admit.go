package transport

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/errs"
)

// LimitMaxSubsPerConn is the limit named in the error (extensions.limit)
// and to OnLimit when a connection has MaxSubsPerConn operations already.
const LimitMaxSubsPerConn = "MAX_SUBS_PER_CONN"

// CloseError, returned by Authenticate (wrapped or not), closes a WebSocket
// with Code instead of 4403, Reason as the close reason. (SSE answers it
// 401 like any authentication failure.)
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return e.Reason }

// closeCodeOf is the close code and reason for an Authenticate error.
func closeCodeOf(err error) (int, string) {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason
	}
	return CloseForbidden, err.Error()
}

// clientIP is r's client address (Options.ClientIP; by default the TCP
// peer's, RemoteIP).
func (c *core) clientIP(r *http.Request) string { return c.opts.ClientIP(r) }

// noRelease is release for a transport without Admit.
func noRelease() {}

// admit asks Options.Admit about r. Refused, the client has been answered
// and ok is false; admitted, release must be called once when the
// connection is over.
func (c *core) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if c.opts.Admit == nil {
		return noRelease, true
	}
	release, err := c.opts.Admit(r)
	if err == nil {
		if release == nil {
			release = noRelease
		}
		return release, true
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Code != errs.RateLimited {
		c.log.Error("transport: admitting a connection", "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "service unavailable")
		return nil, false
	}
	WriteRateLimited(w, e.Message, e.RetryAfter)
	return nil, false
}

// WriteRateLimited answers 429 with Retry-After (whole seconds, at least 1)
// and one RATE_LIMITED error carrying extensions.retryAfter, the shape a
// GraphQL client handles like the same error from an operation.
func WriteRateLimited(w http.ResponseWriter, msg string, retryAfter time.Duration) {
	secs := RetryAfterSeconds(retryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusTooManyRequests, &graphql.Response{Errors: gqlerror.List{{
		Message:    msg,
		Extensions: map[string]any{"code": string(errs.RateLimited), "retryAfter": secs},
	}}})
}

// RetryAfterSeconds is d in whole seconds, rounded up, at least 1: a client
// retrying after it is not early, and never told to retry at once.
func RetryAfterSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}

// limitRefused tells OnLimit that limit refused an operation on ctx's
// connection.
func (c *core) limitRefused(ctx context.Context, limit string) {
	if c.opts.OnLimit != nil {
		c.opts.OnLimit(ctx, limit)
	}
}
