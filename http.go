package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	gqltransport "github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/graph"
	"github.com/taskpulse/taskpulse/internal/metrics"
	"github.com/taskpulse/taskpulse/playground"
	"github.com/taskpulse/taskpulse/realtime/transport"
	"github.com/taskpulse/taskpulse/resolvers"
)

// routes builds the HTTP surface: /graphql (HTTP, WebSocket, SSE), the
// playground, health, readiness and metrics.
func (m *Main) routes() http.Handler {
	cfg := m.cfg
	res := &resolvers.Resolver{Svc: m.svc, Hub: m.hub, Broker: m.broker, Registry: m.registry, Auth: m.authn}
	es := graph.NewExecutableSchema(graph.Config{Resolvers: res})

	topts := transport.Options{
		Authenticate:   m.authenticateConn,
		Registry:       m.registry,
		CheckOrigin:    m.allowedOrigin,
		InitTimeout:    cfg.WSInitTimeout,
		PingInterval:   cfg.WSPingInterval,
		WriteTimeout:   cfg.WSWriteTimeout,
		ReadLimit:      cfg.WSReadLimit,
		SendQueue:      cfg.WSSendQueue,
		MaxSubsPerConn: cfg.MaxSubsPerConn,
		Shapes:         transport.NewShapes(), // one for both: a query over WebSocket and SSE renders once per event
		Logger:         m.log,
	}
	m.ws = transport.NewWebSocket(topts)
	m.sse = transport.NewSSE(topts)

	gql := handler.New(es)
	// Order matters: gqlgen uses the first transport that supports a request.
	gql.AddTransport(m.ws)
	gql.AddTransport(m.sse)
	gql.AddTransport(gqltransport.Options{AllowedMethods: []string{"GET", "POST", "OPTIONS"}})
	gql.AddTransport(gqltransport.GET{})
	gql.AddTransport(gqltransport.POST{})
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	gql.Use(extension.Introspection{})
	gql.Use(extension.FixedComplexityLimit(cfg.GraphQLComplexityLimit))
	gql.AroundOperations(m.currentRights)
	gql.AroundOperations(m.presenceActivity)
	gql.SetErrorPresenter(resolvers.ErrorPresenter(m.log))
	gql.SetRecoverFunc(resolvers.Recover(m.log))

	mux := http.NewServeMux()
	mux.Handle("/graphql", m.cors(limitBody(cfg.HTTPMaxBody, m.authn.Middleware(sseNeedsToken(gql)))))
	pg := playground.Handler("/graphql")
	mux.Handle("GET /{$}", pg)
	mux.Handle("GET "+playground.AssetsPrefix, pg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", m.ready)
	mux.Handle("GET /metrics", m.metrics())
	return mux
}

// limitBody refuses a request whose declared body is over max with 413,
// before anything reads it; a body without a length (chunked) is cut at max
// by MaxBytesReader, which gqlgen reports as a GraphQL error.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"errors":[{"message":"request body is larger than %d bytes","extensions":{"code":"BAD_USER_INPUT"}}]}`, max)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

// sseNeedsToken answers an SSE request without a token 401 before a stream
// starts, as a bad token already is: an event stream cannot be anonymous,
// and a client should not have to parse a stream to learn it.
func sseNeedsToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth.ViewerFrom(r.Context()); !ok && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="taskpulse"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"missing token: send Authorization: Bearer <jwt>","extensions":{"code":"UNAUTHENTICATED"}}]}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ready answers 200 while the store answers and the server is not draining,
// so a load balancer stops sending new clients before sockets close.
func (m *Main) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if m.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := m.store.Ping(ctx); err != nil {
		m.log.Warn("readiness: store unreachable", "err", err)
		http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// authenticateConn authenticates a WebSocket's connection_init (or an SSE
// request): a token in the init payload wins; otherwise the request's
// Authorization header, which the HTTP middleware has already verified
// (its viewer is in the request context, so it is not verified twice). The
// connection is closed at the token's expiry plus the verifier's leeway.
func (m *Main) authenticateConn(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error) {
	v, ok := auth.ViewerFrom(r.Context())
	if token, found := auth.TokenFromInitPayload(init); found {
		var err error
		if v, err = m.authn.Verify(ctx, token); err != nil {
			return nil, "", time.Time{}, err
		}
	} else if !ok {
		return nil, "", time.Time{}, errs.E(errs.Unauthenticated, "missing token: send connection_init {\"token\": \"<jwt>\"} or an Authorization header")
	}
	// The session keeps the token for the connection's operations, which
	// recompute its rights (currentRights) and may replace it
	// (refreshConnection).
	ctx = auth.WithSession(auth.WithViewer(ctx, v), auth.NewSession(v))
	return ctx, v.UserID, v.ExpiresAt.Add(auth.MaxLeeway), nil
}

// allowedOrigin is the WebSocket upgrade's Origin check: non-browser
// clients (no Origin), the server's own pages, and CORS_ORIGIN.
func (m *Main) allowedOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(m.cfg.CORSOrigins, strings.ToLower(origin))
}

// cors answers preflights and marks responses for allowed browser origins
// (with credentials, so cookies or Authorization may be sent).
func (m *Main) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(m.cfg.CORSOrigins, strings.ToLower(origin)) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// metrics registers what /metrics serves.
func (m *Main) metrics() *metrics.Registry {
	reg := metrics.New()
	f := func(v uint64) float64 { return float64(v) }
	reg.Gauge("taskpulse_connections", "Open WebSocket and SSE connections on this instance.", func() float64 { return float64(m.registry.Len()) })
	reg.Gauge("taskpulse_hub_subscriptions", "Active subscriptions on this instance.", func() float64 { return float64(m.hub.Stats().Subscriptions) })
	reg.Gauge("taskpulse_hub_inbox", "Events waiting for dispatch.", func() float64 { return float64(m.hub.Stats().InboxLen) })
	reg.Counter("taskpulse_events_dispatched_total", "Events dispatched by the hub.", func() float64 { return f(m.hub.Stats().Dispatched) })
	reg.Counter("taskpulse_deliveries_total", "Payloads handed to connections.", func() float64 { return f(m.hub.Stats().Delivered) })
	reg.Counter("taskpulse_ws_frames_sent_total", "Frames written to WebSockets.", func() float64 { return f(m.ws.Stats().FramesSent) })
	reg.Counter("taskpulse_ws_slow_consumer_drops_total", "Connections dropped because their send queue overflowed.", func() float64 { return f(m.ws.Stats().SlowConsumerDrops) })
	reg.Gauge("taskpulse_ws_shapes", "Distinct subscription query shapes (payloads are encoded once per shape).", func() float64 { return float64(m.ws.Stats().Shapes) })
	reg.Counter("process_cpu_seconds_total", "User and system CPU time of this process.", processCPUSeconds)
	reg.Gauge("process_resident_memory_bytes", "Resident set size of this process.", processRSSBytes)
	reg.Gauge("go_goroutines", "Goroutines.", func() float64 { return float64(runtime.NumGoroutine()) })
	reg.Gauge("go_memstats_heap_inuse_bytes", "Heap in use.", func() float64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse)
	})
	return reg
}
