package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/internal/gqlguard"
	"github.com/taskpulse/taskpulse/realtime/transport"
)

// serverMetrics is what /metrics serves: one Prometheus registry per Main
// (never the default registry, so two servers in one test process do not
// share series). Every label's values come from a fixed set — transports,
// schema field names, close codes, reason classes, event types — never from
// user or project ids or other client text, so the number of series is
// bounded.
//
// The counters other parts increment go through the methods below
// (Limited, Blocked, PresenceChanged), which keep their labels bounded.
type serverMetrics struct {
	reg *prometheus.Registry

	connections   *prometheus.GaugeVec   // transport
	subscriptions *prometheus.GaugeVec   // transport, field
	disconnects   *prometheus.CounterVec // transport, code
	authFailures  *prometheus.CounterVec // transport, reason
	published     *prometheus.CounterVec // type
	latency       [len(connTransports)]prometheus.Observer
	limited       *prometheus.CounterVec // limit
	blocks        *prometheus.CounterVec // subject
	presence      *prometheus.CounterVec // transition
}

// Label values.
var (
	// connTransports are the transports of connections (Connection.transport).
	connTransports = [...]string{transport.ProtocolTransportWS, transport.ProtocolGraphQLWS, transport.TransportSSE}
	// limitKinds: which limit refused (the limits part's).
	limitKinds = []string{"rate", "conns_per_ip", "subs_per_conn"}
	// blockSubjects: what a block is on.
	blockSubjects = []string{"user", "ip"}
	// presenceTransitions: online (first connection), offline (after the
	// grace), away (idle, or set AWAY), activity (back ONLINE, or page,
	// task or project changed).
	presenceTransitions = []string{"online", "offline", "away", "activity"}
	// knownCloseCodes are counted by their number; any other code a client
	// sends is counted as "other".
	knownCloseCodes = []int{1000, 1001, 1006, 1007, 1008, 1009, 1011, 4010, 4400, 4401, 4403, 4406, 4408, 4409, 4429, 4500}
)

// latencyBuckets span a local fan-out (sub-millisecond) to a stalled client
// at the write timeout (10 s).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// newServerMetrics registers every metric on a fresh registry. The figures
// the components already count (hub, transports, query cache) are read at
// scrape time, so their hot paths pay nothing for being measured.
func (m *Main) newServerMetrics() *serverMetrics {
	reg := prometheus.NewRegistry()
	x := &serverMetrics{reg: reg}
	gaugeVec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	x.connections = gaugeVec("taskpulse_connections", "Open authenticated WebSocket and SSE connections on this instance.", "transport")
	x.subscriptions = gaugeVec("taskpulse_subscriptions", "Active subscriptions on this instance, by transport and root field.", "transport", "field")
	x.disconnects = counterVec("taskpulse_disconnects_total", "Connections closed, by close code (1006: none, the connection broke or an SSE client left).", "transport", "code")
	x.authFailures = counterVec("taskpulse_auth_failures_total", "Refused credentials, by where (http, or the connection's transport) and reason class.", "transport", "reason")
	x.published = counterVec("taskpulse_events_published_total", "Events this instance published, by type.", "type")
	x.limited = counterVec("taskpulse_rate_limited_total", "Operations or connections refused by a limit.", "limit")
	x.blocks = counterVec("taskpulse_abuse_blocks_total", "Users or IPs blocked for abuse.", "subject")
	x.presence = counterVec("taskpulse_presence_transitions_total", "Presence transitions.", "transition")
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "taskpulse_delivery_latency_seconds",
		Help:    "Event commit to the write of its frame to a client's socket, sampled: one batch of events in 8 per connection.",
		Buckets: latencyBuckets,
	}, []string{"transport"})
	reg.MustRegister(latency)

	// Series that exist from the start, at 0: a rate() over them works
	// from the first scrape, and a dashboard shows 0 rather than nothing.
	for i, tr := range connTransports {
		x.connections.WithLabelValues(tr)
		x.latency[i] = latency.WithLabelValues(tr)
	}
	for _, v := range limitKinds {
		x.limited.WithLabelValues(v)
	}
	for _, v := range blockSubjects {
		x.blocks.WithLabelValues(v)
	}
	for _, v := range presenceTransitions {
		x.presence.WithLabelValues(v)
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return x
}

// registerComponents reads the components' own counters at scrape time.
// The ws_ names are the WebSocket transport's (kept for existing
// dashboards and tpload); the transport-labelled ones count SSE too.
func (m *Main) registerComponents(queryCache *gqlguard.QueryCache) {
	reg := m.metrics.reg
	gauge := func(name, help string, labels prometheus.Labels, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	counter := func(name, help string, labels prometheus.Labels, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	u := func(v uint64) float64 { return float64(v) }
	gauge("taskpulse_hub_subscriptions", "Active subscriptions in the hub.", nil, func() float64 { return float64(m.hub.Stats().Subscriptions) })
	gauge("taskpulse_hub_inbox", "Events waiting for dispatch.", nil, func() float64 { return float64(m.hub.Stats().InboxLen) })
	counter("taskpulse_events_dispatched_total", "Events dispatched by the hub.", nil, func() float64 { return u(m.hub.Stats().Dispatched) })
	counter("taskpulse_deliveries_total", "Payloads handed to connections.", nil, func() float64 { return u(m.hub.Stats().Delivered) })
	counter("taskpulse_ws_frames_sent_total", "Frames written to WebSockets.", nil, func() float64 { return u(m.ws.Stats().FramesSent) })
	counter("taskpulse_ws_slow_consumer_drops_total", "WebSockets dropped because their send queue overflowed.", nil, func() float64 { return u(m.ws.Stats().SlowConsumerDrops) })
	gauge("taskpulse_ws_shapes", "Distinct subscription query shapes of both transports (payloads are encoded once per shape).", nil, func() float64 { return float64(m.ws.Stats().Shapes) })
	for name, stats := range map[string]func() transport.Stats{"websocket": m.ws.Stats, "sse": m.sse.Stats} {
		l := prometheus.Labels{"transport": name}
		counter("taskpulse_frames_sent_total", "Messages written to clients.", l, func() float64 { return u(stats().FramesSent) })
		counter("taskpulse_slow_consumer_drops_total", "Connections dropped because their send queue overflowed (4010).", l, func() float64 { return u(stats().SlowConsumerDrops) })
	}
	// The feed: how far this instance follows the shared log, and how.
	fs := m.feed.Stats
	gauge("taskpulse_log_position", "Last event log seq delivered to this instance's hub.", nil, func() float64 { return u(fs().Position) })
	gauge("taskpulse_log_lag", "Log entries seen (database or stream) but not yet delivered here.", nil, func() float64 { return u(fs().Lag) })
	gauge("taskpulse_redis_up", "1 while the feed's last Redis operation succeeded (0 without Redis or while it is away).", nil, func() float64 {
		if st := fs(); st.Redis && st.RedisUp {
			return 1
		}
		return 0
	})
	for name, f := range map[string]func(feed.Stats) uint64{
		"stream": func(st feed.Stats) uint64 { return st.FromStream }, "database": func(st feed.Stats) uint64 { return st.FromDB },
	} {
		counter("taskpulse_log_delivered_total", "Log entries delivered to the hub, by where they were read.", prometheus.Labels{"source": name}, func() float64 { return u(f(fs())) })
	}
	counter("taskpulse_log_relayed_total", "Log entries this instance's relay appended to the Redis stream.", nil, func() float64 { return u(fs().Relayed) })
	counter("taskpulse_log_gap_fills_total", "Holes in the Redis stream filled from the database.", nil, func() float64 { return u(fs().GapFills) })
	counter("taskpulse_log_lost_total", "Log entries trimmed before this instance delivered them (their subscriptions ended CURSOR_EXPIRED).", nil, func() float64 { return u(fs().Lost) })
	counter("taskpulse_feed_errors_total", "Failed Redis or database operations of the feed (retried).", nil, func() float64 { return u(fs().Errors) })
	gauge("taskpulse_graphql_query_cache_bytes", "Bytes held by the cache of parsed GraphQL documents (GRAPHQL_QUERY_CACHE_BYTES bounds it).", nil, func() float64 { return float64(queryCache.Bytes()) })
}

// metricsHandler registers the components' figures and serves the
// registry in the Prometheus text format. Called once, by routes.
func (m *Main) metricsHandler(queryCache *gqlguard.QueryCache) http.Handler {
	m.registerComponents(queryCache)
	return promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:      promErrorLog{m},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.metrics.reg, // promhttp_metric_handler_errors_total
	})
}

// promErrorLog sends promhttp's errors to the process log.
type promErrorLog struct{ m *Main }

func (l promErrorLog) Println(v ...any) { l.m.log.Warn("metrics: scrape error", "err", v) }

// ---- for other parts (limits, presence) ----

// Limited counts an operation or connection a limit refused: limit is
// "rate" (RATE_LIMIT_PER_MIN), "conns_per_ip" or "subs_per_conn".
func (x *serverMetrics) Limited(limit string) {
	x.limited.WithLabelValues(oneOf(limit, limitKinds)).Inc()
}

// Blocked counts a block for abuse: subject is "user" or "ip".
func (x *serverMetrics) Blocked(subject string) {
	x.blocks.WithLabelValues(oneOf(subject, blockSubjects)).Inc()
}

// PresenceChanged counts a presence transition: "online", "offline",
// "away" or "activity".
func (x *serverMetrics) PresenceChanged(transition string) {
	x.presence.WithLabelValues(oneOf(transition, presenceTransitions)).Inc()
}

// ---- label values ----

// oneOf is v if it is in known, "other" otherwise: a label never takes a
// value the code did not plan for.
func oneOf(v string, known []string) string {
	for _, k := range known {
		if v == k {
			return v
		}
	}
	return "other"
}

func transportIndex(tr string) int {
	for i, k := range connTransports {
		if tr == k {
			return i
		}
	}
	return -1
}

// codeLabel is a close code's label value.
func codeLabel(code int) string {
	for _, k := range knownCloseCodes {
		if code == k {
			return strconv.Itoa(code)
		}
	}
	return "other"
}

// observeLatency records a sampled commit → write latency. A commit in the
// future (another instance's clock) counts as 0.
func (x *serverMetrics) observeLatency(tr string, commit time.Time) {
	if i := transportIndex(tr); i >= 0 {
		x.latency[i].Observe(max(0, time.Since(commit).Seconds()))
	}
}
