package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/abuse"
	"github.com/taskpulse/taskpulse/audit"
	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/ratelimit"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/realtime/transport"
)

// The limits a refusal names (audit records, logs).
const (
	limitRate    = "RATE_LIMIT_PER_MIN"
	limitConns   = "MAX_CONNS_PER_IP"
	limitAuth    = "AUTH_FAILURE"
	limitBlocked = "ABUSE_COOLDOWN"
)

// connRetryAfter is the Retry-After of a connection refused by
// MAX_CONNS_PER_IP: when one of the address's connections closes is
// unknown, so a hint that spares the server a tight reconnect loop.
const connRetryAfter = 5 * time.Second

// limits is the server's guard against abuse, at its four seams:
//   - every GraphQL operation, on every transport (operation, a gqlgen
//     operation interceptor): RATE_LIMIT_PER_MIN per user for mutations
//     (each root field) and subscribes, and the blocks;
//   - every WebSocket upgrade and SSE request (admit, the transports'
//     Admit): MAX_CONNS_PER_IP and blocked addresses, with 429;
//   - HTTP requests to /graphql (guardHTTP, guardUser): blocked addresses
//     and users, 429; refused credentials counted against the address;
//   - connection_init (authenticate): refused credentials counted, blocked
//     users closed 1008.
//
// Refusals are strikes (abuse.Tracker): of the user for rate-limited
// operations and MAX_SUBS_PER_CONN, of the client IP for MAX_CONNS_PER_IP
// and refused credentials. Too many and the user or address is blocked for
// ABUSE_COOLDOWN: its connections closed 1008, everything it asks refused
// (429, or RATE_LIMITED on a connection still open), the block and its end
// audit-logged. Queries are not rate-limited: gqlguard bounds their cost.
type limits struct {
	log      *slog.Logger
	audit    *audit.Logger
	registry *realtime.Registry
	clientIP func(*http.Request) string
	present  graphql.ErrorPresenterFunc

	limit ratelimit.Limit
	ops   ratelimit.Limiter  // operations per user
	users abuse.Tracker      // strikes and blocks per user id
	ips   abuse.Tracker      // strikes and blocks per client IP
	conns *ratelimit.Counter // open connections per client IP

	mu       sync.Mutex
	unblocks map[string]*time.Timer // blockKey → the audit record of its end
	// pending bounds unblocks as the trackers bound blocks (limits_unblocks.go).
	pending   [2]unblockQueue // by subject: subjectUser, subjectIP
	maxBlocks int             // the trackers' MaxBlocks
	closed    bool

	metrics limitsMetrics
}

// limitsMetrics counts refusals and blocks (serverMetrics satisfies it):
// limit is "rate", "conns_per_ip" or "subs_per_conn"; subject "user" or "ip".
type limitsMetrics interface {
	Limited(limit string)
	Blocked(subject string)
}

// uncounted is the limitsMetrics of a guard nobody scrapes (unit tests).
type uncounted struct{}

func (uncounted) Limited(string) {}
func (uncounted) Blocked(string) {}

// limitsOptions is what the guard acts with.
type limitsOptions struct {
	Log      *slog.Logger
	Audit    *audit.Logger
	Registry *realtime.Registry
	ClientIP func(*http.Request) string
	Present  graphql.ErrorPresenterFunc
	Metrics  limitsMetrics
	// Redis, when set, holds the rate limit and the strikes and blocks,
	// shared by every instance, under keys starting RedisPrefix
	// (limits_redis.go); nil keeps them in process.
	Redis       redis.UniversalClient
	RedisGuard  *redisGuard
	RedisPrefix string
}

// newLimits builds the guard from the configuration: in process, or with
// its counts in Redis when o.Redis is set.
func newLimits(cfg config.Config, o limitsOptions) (*limits, error) {
	lim := ratelimit.PerMinute(cfg.RateLimitPerMin)
	policy := abuse.Policy{Threshold: cfg.AbuseThreshold, Window: cfg.AbuseWindow, Cooldown: cfg.AbuseCooldown}
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("ABUSE_THRESHOLD per ABUSE_WINDOW: %w", err)
	}
	tracked := abuse.MemoryOptions{MaxBlocks: abuse.DefaultMaxBlocks}
	var ops ratelimit.Limiter = ratelimit.NewMemory(lim, ratelimit.MemoryOptions{})
	var users, ips abuse.Tracker = abuse.NewMemory(policy, tracked), abuse.NewMemory(policy, tracked)
	if o.Redis != nil {
		ops, users, ips = redisLimits(o.Redis, o.RedisGuard, o.RedisPrefix, lim, policy)
	}
	return &limits{
		log: o.Log, audit: o.Audit, registry: o.Registry, clientIP: o.ClientIP, present: o.Present,
		limit:     lim,
		ops:       ops,
		users:     users,
		ips:       ips,
		conns:     ratelimit.NewCounter(cfg.MaxConnsPerIP),
		unblocks:  make(map[string]*time.Timer),
		maxBlocks: tracked.MaxBlocks,
		metrics:   cmp.Or[limitsMetrics](o.Metrics, uncounted{}),
	}, nil
}

// ---- operations ----

// operation is the interceptor every operation goes through, whichever
// transport brought it (HTTP, a WebSocket's subscribe, an SSE request):
// gqlgen's executor runs it in DispatchOperation.
func (l *limits) operation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if _, rendering := realtime.RenderFrom(ctx); rendering {
		return next(ctx) // an event rendered for a live subscription: not a client's operation
	}
	v, ok := auth.ViewerFrom(ctx)
	if !ok {
		return next(ctx)
	}
	ip := connIP(ctx)
	if st := l.checkBlocked(ctx, v.UserID, ip); st.Blocked {
		return l.refuse(ctx, blockedError(st))
	}
	oc := graphql.GetOperationContext(ctx)
	n := operationCost(oc)
	if n == 0 {
		return next(ctx)
	}
	if n > l.limit.Burst {
		return l.refuse(ctx, errs.E(errs.BadUserInput, "this operation runs %d mutations; at most %d (%s) may run in one operation", n, l.limit.Burst, limitRate))
	}
	res, err := l.ops.AllowN(ctx, v.UserID, n)
	if err != nil {
		// Availability over strictness: a rate limiter that cannot answer
		// (its store down) must not stop every write.
		l.log.Warn("rate limiter unavailable: operation allowed", "user", v.UserID, "err", err)
		return next(ctx)
	}
	if res.Allowed {
		return next(ctx)
	}
	return l.refuse(ctx, l.rateLimited(ctx, v.UserID, rootField(oc), res))
}

// rateLimited records a refusal by the rate limit (metrics, audit, a
// strike) and returns the error its client gets.
func (l *limits) rateLimited(ctx context.Context, userID, operation string, res ratelimit.Result) *errs.Error {
	l.metrics.Limited("rate")
	// actor: the connection, or the request (HTTP, SSE), it came on.
	rec := actor(ctx)
	rec.Kind, rec.UserID, rec.Operation = audit.RateLimited, userID, operation
	rec.Code, rec.Reason = string(errs.RateLimited), limitRate
	l.audit.Log(rec)
	l.strike(ctx, userID, "", limitRate)
	return &errs.Error{
		Code:       errs.RateLimited,
		Message:    fmt.Sprintf("rate limit: %d mutations and subscribes a minute; retry after extensions.retryAfter seconds", l.limit.Rate),
		RetryAfter: res.RetryAfter,
	}
}

// replayEntriesPerOperation is how many log entries a resume may scan for
// the price of one operation: rendering a replayed event is not shared
// with other subscribers (up to ~0.4 ms of CPU for the largest), so a
// resume from far back is charged as the many operations it costs.
const replayEntriesPerOperation = 1000

// chargeReplay takes from the user's rate limit what a resume scanning
// entries log entries costs beyond its subscribe (one operation per
// replayEntriesPerOperation, at most the burst), or refuses it
// (RATE_LIMITED, with retryAfter). service.Subscriptions calls it before a
// replay starts.
func (l *limits) chargeReplay(ctx context.Context, userID string, entries uint64) error {
	n := int(min(entries/replayEntriesPerOperation, uint64(l.limit.Burst)))
	if n == 0 {
		return nil
	}
	res, err := l.ops.AllowN(ctx, userID, n)
	if err != nil {
		l.log.Warn("rate limiter unavailable: resume allowed", "user", userID, "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	return l.rateLimited(ctx, userID, "resume", res)
}

// operationCost is what an operation takes from its user's rate limit:
// each root field of a mutation (one operation may carry many), 1 for a
// subscribe, 0 for a query.
func operationCost(oc *graphql.OperationContext) int {
	if oc == nil || oc.Operation == nil {
		return 0
	}
	switch oc.Operation.Operation {
	case ast.Mutation:
		return max(len(graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Mutation"})), 1)
	case ast.Subscription:
		return 1
	}
	return 0
}

// rootField names an operation in an audit record: its first root field.
func rootField(oc *graphql.OperationContext) string {
	for _, sel := range oc.Operation.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			return f.Name
		}
	}
	return string(oc.Operation.Operation)
}

// connIP is the client address of the connection an operation runs on;
// "" over HTTP (whose address guardHTTP checked).
func connIP(ctx context.Context) string {
	if c, ok := realtime.ConnFrom(ctx); ok {
		return c.Info().IP
	}
	return ""
}

// refuse answers an operation with err, presented as every error is.
func (l *limits) refuse(ctx context.Context, err error) graphql.ResponseHandler {
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{l.present(ctx, err)}})
}

func blockedError(st abuse.Status) *errs.Error {
	return &errs.Error{
		Code:       errs.RateLimited,
		Message:    "blocked after repeated refusals (rate limit, connection or subscription caps, rejected credentials); retry after extensions.retryAfter seconds",
		RetryAfter: st.RetryAfter(time.Now()),
	}
}

// onTransportLimit counts a transport's refusal (MAX_SUBS_PER_CONN)
// against the connection's user, and audit-logs it as every refused
// operation is.
func (l *limits) onTransportLimit(ctx context.Context, limit string) {
	l.metrics.Limited("subs_per_conn")
	rec := actor(ctx)
	rec.Kind, rec.Code, rec.Reason = audit.RateLimited, string(errs.BadUserInput), limit // the client's error code
	if graphql.HasOperationContext(ctx) {
		if oc := graphql.GetOperationContext(ctx); oc.Operation != nil {
			rec.Operation = rootField(oc)
		}
	}
	l.audit.Log(rec)
	if v, ok := auth.ViewerFrom(ctx); ok {
		l.strike(ctx, v.UserID, "", limit)
	}
}

// ---- connections and HTTP requests ----

// admit is the transports' Admit: a blocked address, or one with
// MAX_CONNS_PER_IP connections open, is refused 429 before the upgrade
// (or the SSE request's body); the slot is released when the connection
// ends, however it ends.
func (l *limits) admit(r *http.Request) (func(), error) {
	ip := l.clientIP(r)
	if st := l.check(r.Context(), l.ips, ip); st.Blocked {
		return nil, blockedError(st)
	}
	release, ok := l.conns.Acquire(ip)
	if ok {
		return release, nil
	}
	l.metrics.Limited("conns_per_ip")
	l.audit.Log(audit.Record{Kind: audit.RateLimited, IP: ip, Operation: "connect", Transport: transportOf(r),
		Code: string(errs.RateLimited), Reason: limitConns})
	l.strike(r.Context(), "", ip, limitConns)
	return nil, &errs.Error{
		Code:       errs.RateLimited,
		Message:    fmt.Sprintf("too many open connections from this address (%s %d): close one, or retry later", limitConns, l.conns.Max()),
		RetryAfter: connRetryAfter,
	}
}

func transportOf(r *http.Request) string {
	if websocket.IsWebSocketUpgrade(r) {
		return "websocket"
	}
	return transport.TransportSSE
}

// guardHTTP wraps /graphql's authentication middleware mw: a request from
// a blocked address is refused 429 before anything else, and one whose
// credentials mw refuses (it answered without passing the request on)
// is a strike against its address. A request without credentials is not:
// that costs the server nothing (401 before its body is read).
func (l *limits) guardHTTP(mw func(http.Handler) http.Handler, next http.Handler) http.Handler {
	plain := mw(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := l.clientIP(r)
		if st := l.check(r.Context(), l.ips, ip); st.Blocked {
			transport.WriteRateLimited(w, blockedError(st).Message, st.RetryAfter(time.Now()))
			return
		}
		if len(r.Header.Values("Authorization")) == 0 {
			plain.ServeHTTP(w, r)
			return
		}
		passed := false
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			passed = true
			next.ServeHTTP(w, r)
		})).ServeHTTP(w, r)
		if !passed {
			l.strike(r.Context(), "", ip, limitAuth)
		}
	})
}

// guardUser refuses an authenticated request of a blocked user 429 (put
// it after the authentication middleware).
func (l *limits) guardUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := auth.ViewerFrom(r.Context()); ok {
			if st := l.check(r.Context(), l.users, v.UserID); st.Blocked {
				transport.WriteRateLimited(w, blockedError(st).Message, st.RetryAfter(time.Now()))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// authFunc is transport.Options.Authenticate.
type authFunc = func(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error)

// authenticate wraps the connections' authentication: a WebSocket whose
// credentials are refused is a strike against its address (an SSE
// request's were checked, and counted, by guardHTTP), and a blocked user or
// address is closed 1008.
func (l *limits) authenticate(next authFunc) authFunc {
	return func(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error) {
		opCtx, userID, exp, err := next(ctx, r, init)
		if err != nil {
			if websocket.IsWebSocketUpgrade(r) {
				l.strike(ctx, "", l.clientIP(r), limitAuth)
			}
			return nil, "", time.Time{}, err
		}
		st := l.checkBlocked(ctx, userID, l.clientIP(r))
		if st.Blocked {
			return nil, "", time.Time{}, &transport.CloseError{Code: transport.ClosePolicyViolation, Reason: blockReason(st)}
		}
		return opCtx, userID, exp, nil
	}
}

// blockReason is the close reason of a blocked connection.
func blockReason(st abuse.Status) string {
	return fmt.Sprintf("Blocked for repeated limit violations: retry in %d s", transport.RetryAfterSeconds(st.RetryAfter(time.Now())))
}

// ---- strikes and blocks ----

// check is tr's standing of key; a tracker that cannot answer lets the
// request through (and is logged).
func (l *limits) check(ctx context.Context, tr abuse.Tracker, key string) abuse.Status {
	if key == "" {
		return abuse.Status{}
	}
	st, err := tr.Check(ctx, key)
	if err != nil {
		l.log.Warn("abuse tracker unavailable", "err", err)
		return abuse.Status{}
	}
	return st
}

// checkBlocked is the standing of a user and, if known, their address:
// either blocked blocks.
func (l *limits) checkBlocked(ctx context.Context, userID, ip string) abuse.Status {
	if st := l.check(ctx, l.users, userID); st.Blocked {
		return st
	}
	return l.check(ctx, l.ips, ip)
}

// strike counts a refusal (limit names it) against a user or an address,
// and starts the block it may cause.
func (l *limits) strike(ctx context.Context, userID, ip, limit string) {
	tr, key := l.users, userID
	if userID == "" {
		tr, key = l.ips, ip
	}
	if key == "" {
		return
	}
	st, err := tr.Strike(ctx, key)
	if err != nil {
		l.log.Warn("abuse tracker unavailable", "err", err)
		return
	}
	if st.Started {
		l.block(userID, ip, limit, st)
	}
}

// block acts on a block this process started: closes the user's or the
// address's connections here with 1008, audit-logs it, and schedules the
// audit record of its end. (With a tracker shared by instances, the
// others close theirs when the user's or address's next operation or
// connection finds the block.)
func (l *limits) block(userID, ip, limit string, st abuse.Status) {
	reason := blockReason(st)
	var closed int
	rec := audit.Record{Kind: audit.Block, Until: st.Until, Reason: limit}
	key := "user:" + userID
	if userID != "" {
		rec.UserID = userID
		l.metrics.Blocked("user")
		closed = l.registry.Disconnect(userID, transport.ClosePolicyViolation, reason)
	} else {
		rec.IP, key = ip, "ip:"+ip
		l.metrics.Blocked("ip")
		closed = l.registry.DisconnectIP(ip, transport.ClosePolicyViolation, reason)
	}
	rec.Count = closed
	l.audit.Log(rec)
	l.log.Warn("blocked for abuse", "user", userID, "ip", ip, "limit", limit, "until", st.Until, "connectionsClosed", closed)

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	sub := subjectOf(userID)
	old := l.unblocks[key]
	if old != nil {
		old.Stop() // its queue entry is now stale
	}
	var tm *time.Timer
	tm = time.AfterFunc(time.Until(st.Until), func() {
		l.mu.Lock()
		if l.unblocks[key] != tm {
			l.mu.Unlock()
			return
		}
		delete(l.unblocks, key)
		l.pending[sub].fired(l.unblocks)
		l.mu.Unlock()
		l.unblocked(userID, ip)
	})
	l.unblocks[key] = tm
	l.pending[sub].push(pendingUnblock{key: key, userID: userID, ip: ip, tm: tm}, old != nil)
	early := l.pending[sub].evict(l.unblocks, l.maxBlocks)
	l.mu.Unlock()
	for _, p := range early {
		l.unblocked(p.userID, p.ip)
	}
}

// unblocked records the end of a block.
func (l *limits) unblocked(userID, ip string) {
	l.audit.Log(audit.Record{Kind: audit.Unblock, UserID: userID, IP: ip})
	l.log.Info("block ended", "user", userID, "ip", ip)
}

// close stops the timers of pending unblock records.
func (l *limits) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for k, tm := range l.unblocks {
		tm.Stop()
		delete(l.unblocks, k)
	}
	l.pending = [2]unblockQueue{}
}
