package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/playground"
)

// routes builds the HTTP surface: /graphql (HTTP, WebSocket, SSE), the
// playground, health, readiness and metrics.
func (m *Main) routes() http.Handler {
	gql, queryCache := m.graphqlHandler()

	mux := http.NewServeMux()
	mux.Handle("/graphql", m.cors(m.limits.guardHTTP(m.authn.Middleware, gql)))
	pg := playground.Handler("/graphql")
	mux.Handle("GET /{$}", pg)
	mux.Handle("GET "+playground.AssetsPrefix, pg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", m.ready)
	mux.Handle("GET /metrics", m.metricsHandler(queryCache))
	return m.bodyDeadline(mux)
}

// ready answers 200 while the store and the broker (brokerReady) answer
// and the server is not draining, so a load balancer stops sending new
// clients before sockets close, and sends none to an instance cut off
// from Redis.
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
	if err := m.brokerReady(ctx); err != nil {
		m.log.Warn("readiness: broker unreachable", "err", err)
		http.Error(w, "broker unreachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// authenticateConn authenticates a WebSocket's connection_init (or an SSE
// request): a token in the init payload wins; otherwise the request's
// Authorization header, which the HTTP middleware has already verified
// (its viewer is in the request context, so it is not verified twice).
// Both may be sent, but must name the same user: a connection is one
// user's, whichever credential a proxy or a client library added (4403
// otherwise). The connection is closed at the token's expiry plus the
// verifier's leeway.
func (m *Main) authenticateConn(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error) {
	v, ok := auth.ViewerFrom(r.Context())
	if token, found := auth.TokenFromInitPayload(init); found {
		iv, err := m.authn.Verify(ctx, token)
		if err != nil {
			return nil, "", time.Time{}, err
		}
		if ok && iv.UserID != v.UserID {
			return nil, "", time.Time{}, errs.E(errs.Forbidden, "connection_init and the Authorization header name different users")
		}
		v = iv
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
