// Command taskpulse serves the taskpulse GraphQL API: queries and mutations
// over HTTP, live subscriptions over WebSocket (graphql-transport-ws and the
// legacy graphql-ws) and SSE (graphql-sse).
//
//	taskpulse [serve] [--demo]
//	taskpulse user add <id> --name "<name>" [--email <e>] [--admin]
//	taskpulse user update <id> [--name <n>] [--email <e>] [--admin=true|false] [--disabled=true|false]
//	taskpulse token <userID> [--ttl 1h] [--role admin|service]
//
// Configuration comes from the environment (see README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/taskpulse/taskpulse/audit"
	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/realtime/transport"
	"github.com/taskpulse/taskpulse/resolvers"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/postgres"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Main is one running server: everything `taskpulse serve` starts, so
// end-to-end tests run the real thing on 127.0.0.1:0.
type Main struct {
	cfg      config.Config
	log      *slog.Logger
	store    store.Store
	feed     *feed.Feed // the committed log (and live events) to hub
	subs     *service.Subscriptions
	hub      *realtime.Hub
	registry *realtime.Registry
	svc      *service.Service
	presence presence.Presence
	relay    *presence.Relay // publishes presence changes
	authn    *auth.Authenticator
	ws       *transport.WebSocket
	sse      *transport.SSE
	srv      *http.Server
	ln       net.Listener
	certs    *certReloader // nil without TLS
	debug    *http.Server
	served   chan error
	draining atomic.Bool

	// Audit is the audit log (AUDIT_LOG): connections, authentication
	// failures, subscriptions, denials, mutations, administrative
	// disconnects, abuse blocks. Never nil once Open succeeds.
	Audit      *audit.Logger
	closeAudit func() error
	// metrics is what /metrics serves (metrics.go); its methods Limited,
	// Blocked and PresenceChanged are for the limits and presence parts.
	metrics *serverMetrics
	// clientIPs finds a request's client address (TRUSTED_PROXIES);
	// limits is the rate limit, the per-IP cap and the abuse blocks.
	clientIPs clientIPs
	limits    *limits

	// clusterParts: REDIS_URL's client, key prefix and instance name, and
	// the cluster-wide connection directory (cluster_wiring.go); zero
	// without REDIS_URL.
	clusterParts
}

// openStore opens the configured database: the server and the CLI commands
// share it.
func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	switch cfg.DatabaseKind {
	case config.DatabaseSQLite:
		return sqlite.Open(ctx, cfg.SQLitePath)
	case config.DatabasePostgres:
		return postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: cfg.DatabaseMaxConns})
	default:
		return nil, fmt.Errorf("database kind %q unknown", cfg.DatabaseKind)
	}
}

// newAuthenticator loads (or creates once) the signing key and builds the
// token verifier the server and the CLI share.
func newAuthenticator(ctx context.Context, cfg config.Config, st store.Store, log *slog.Logger, onFailure func(*http.Request, *errs.Error)) (*auth.Authenticator, error) {
	secret, generated, err := auth.LoadOrCreateSecret(ctx, cfg.JWTSecret, st)
	if err != nil {
		return nil, err
	}
	if generated {
		log.Warn("JWT_SECRET is not set: using a key generated and kept in the database; set JWT_SECRET in production so every instance and tool shares it")
	}
	return auth.NewAuthenticator(auth.Options{
		Secret: secret, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Users: st, Logger: log,
		OnFailure: onFailure,
	})
}

// Open starts a server: store, realtime, GraphQL and the HTTP listener.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Main, err error) {
	if cfg.JWKSURL != "" {
		return nil, fmt.Errorf("JWKS_URL is set but this build verifies only HS256 tokens signed with JWT_SECRET; unset it")
	}
	m := &Main{cfg: cfg, log: log, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			m.closeComponents()
		}
	}()
	m.metrics = m.newServerMetrics()
	auditFailed := func(err error) {
		log.Error("audit log: a record could not be written (later failures are not reported)", "err", err)
	}
	if m.Audit, m.closeAudit, err = audit.Open(cfg.AuditLog, auditFailed); err != nil {
		return nil, err
	}
	if m.store, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	if m.authn, err = newAuthenticator(ctx, cfg, m.store, log, m.httpAuthFailed); err != nil {
		return nil, err
	}
	if err = m.openRedis(ctx); err != nil {
		return nil, err
	}
	m.clientIPs = clientIPs{trusted: cfg.TrustedProxies}
	m.registry = realtime.NewRegistry()
	if m.limits, err = newLimits(cfg, limitsOptions{
		Log: log, Audit: m.Audit, Registry: m.registry, ClientIP: m.clientIP, Present: resolvers.ErrorPresenter(log), Metrics: m.metrics,
		Redis: m.redis, RedisGuard: &m.guard, RedisPrefix: m.redisPrefix,
	}); err != nil {
		return nil, err
	}
	m.hub = realtime.NewHub(realtime.HubOptions{Logger: log, Registry: m.registry})
	if m.feed, err = feed.New(feed.Options{
		Log: m.store, Deliver: m.hub.Enqueue, OnGap: m.hub.Lost, Logger: log,
		Redis: m.redis, Prefix: cfg.RedisPrefix,
		HistoryTTL: cfg.HistoryTTL, HistoryMax: cfg.HistoryMax, TrimEvery: cfg.HistoryTrimEvery,
	}); err != nil {
		return nil, err
	}
	if err = m.feed.Start(ctx); err != nil {
		return nil, err
	}
	m.svc = service.New(m.store, m.feed, log)
	m.svc.CountEvents(func(typ string) { m.metrics.published.WithLabelValues(typ).Inc() })
	m.openPresence()

	if cfg.TLSCertFile != "" {
		// Before listening: a bad certificate stops the start.
		if m.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log); err != nil {
			return nil, err
		}
	}
	handler := m.routes()
	if m.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, err
	}
	m.ln = m.limitConns(m.ln)
	m.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          httpErrorLog(log),
	}
	if m.certs != nil {
		// ServeTLS offers h2 and http/1.1 (ALPN): HTTP/2 for requests,
		// while a WebSocket upgrade, which HTTP/2 cannot carry (extended
		// CONNECT is off in net/http), comes on an HTTP/1.1 connection.
		m.srv.TLSConfig = newTLSConfig(m.certs)
		go func() { m.served <- m.srv.ServeTLS(m.ln, "", "") }()
	} else {
		go func() { m.served <- m.srv.Serve(m.ln) }()
	}
	if cfg.DebugAddr != "" {
		if err := m.serveDebug(cfg.DebugAddr); err != nil {
			_ = m.srv.Close()
			<-m.served
			return nil, err
		}
	}
	return m, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:43121, or https://…
// with TLS; a wildcard bind (":8080") is shown as localhost, an address a
// browser can open — with TLS, a name the certificate is for.
func (m *Main) URL() string {
	scheme := "http://"
	if m.certs != nil {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(m.ln.Addr().String())
	if err != nil || net.ParseIP(host).IsUnspecified() {
		host = "localhost"
		if m.certs != nil {
			host = certHost(m.certs.Leaf())
		}
	}
	return scheme + net.JoinHostPort(host, port)
}

// Service exposes the use cases (tests and the demo seed create data).
func (m *Main) Service() *service.Service { return m.svc }

// Authenticator exposes token issuing (tests and the demo).
func (m *Main) Authenticator() *auth.Authenticator { return m.authn }

// Close shuts down gracefully: readiness fails at once, the listener stops,
// open sockets are closed with 1001 spread over DRAIN_TIMEOUT so clients do
// not reconnect all at once, in-flight HTTP requests finish, then the
// realtime layer and the store close.
func (m *Main) Close(ctx context.Context) error {
	m.draining.Store(true)
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DrainTimeout+5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- m.srv.Shutdown(ctx) }()
	m.registry.Drain(ctx, m.cfg.DrainTimeout, 1001, "server shutting down")
	err := <-shut
	if m.debug != nil {
		err = errors.Join(err, m.debug.Close())
	}
	if serr := <-m.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, m.closeComponents())
}

// closeComponents closes what Open created, in reverse order.
func (m *Main) closeComponents() error {
	var errs []error
	if m.certs != nil {
		m.certs.Close()
	}
	if m.ws != nil {
		m.ws.Close()
	}
	if m.sse != nil {
		m.sse.Close()
	}
	if m.limits != nil {
		m.limits.close()
	}
	errs = append(errs, m.closePresence())
	if m.feed != nil {
		errs = append(errs, m.feed.Close())
	}
	if m.hub != nil {
		m.hub.Close() // also stops the replays in progress
	}
	if m.subs != nil {
		m.subs.Wait() // they read the store: before it closes
	}
	errs = append(errs, m.closeRedis()) // after all that use it
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	if m.closeAudit != nil {
		// Last: the transports' Close above records the last disconnects.
		errs = append(errs, m.closeAudit())
	}
	return errors.Join(errs...)
}

// serveDebug serves Go's profiles on their own listener (DEBUG_ADDR), so
// they are never reachable through the public address.
func (m *Main) serveDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("DEBUG_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.debug.Serve(ln) }()
	m.log.Info("debug listener (pprof)", "addr", ln.Addr().String())
	return nil
}

// newLogger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
