// Package config owns taskpulse's configuration: it turns the process
// environment into a typed Config, filling in the documented defaults and
// refusing bad values with errors that name the variable and the value.
//
// FromEnv takes the lookup function as an argument (os.Getenv in main, a map
// in tests) so nothing here reads the real environment behind the caller's
// back. An empty value is the same as an unset one: the default applies.
// The one thing it reads besides variables is the TLS files they name, so a
// bad certificate stops the process at start, not at the first handshake.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Database kinds, the values of Config.DatabaseKind.
const (
	DatabaseSQLite   = "sqlite"
	DatabasePostgres = "postgres"
)

// Log formats, the values of Config.LogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Config is the server's and the CLI's configuration. Every field comes from
// the environment variable named in its comment.
type Config struct {
	// Addr is the listen address (ADDR, default ":8080").
	Addr string

	// DatabaseURL is the store location (DATABASE_URL, default
	// "sqlite:taskpulse.db"): "sqlite:<path>", "sqlite::memory:", or
	// "postgres://…" / "postgresql://…".
	DatabaseURL string
	// DatabaseKind is DatabaseSQLite or DatabasePostgres, from DatabaseURL's
	// scheme.
	DatabaseKind string
	// SQLitePath is the text after "sqlite:" (":memory:" for
	// "sqlite::memory:"); empty for Postgres.
	SQLitePath string
	// DatabaseMaxConns (DATABASE_MAX_CONNS, default 10) caps the
	// connections one process opens to PostgreSQL; unused with SQLite.
	DatabaseMaxConns int

	// RedisURL (REDIS_URL, default unset) makes instances share one
	// Redis: the log's delivery, presence, connections, the rate limit and
	// abuse blocks. One server "redis://host:port/db", a Cluster
	// "redis+cluster://host:port,host:port…", or Sentinel
	// "redis+sentinel://host:26379,…/master" ("rediss…" for TLS; every
	// form in RedisTarget). Empty means everything in process (a single
	// instance).
	RedisURL string
	// RedisMode is RedisSingle, RedisCluster or RedisSentinel, from
	// RedisURL; empty without it.
	RedisMode string
	// RedisPrefix (REDIS_PREFIX, default "taskpulse") starts every Redis
	// key, followed by ":": deployments sharing one Redis keep apart by
	// it, and the instances of one deployment must share it.
	RedisPrefix string

	// JWTSecret is the raw HS256 key, its UTF-8 bytes (JWT_SECRET). Empty
	// means a key generated once and kept in the store (auth.LoadOrCreateSecret).
	JWTSecret string
	// JWTIssuer (JWT_ISSUER) is the required "iss" claim when set.
	JWTIssuer string
	// JWTAudience (JWT_AUDIENCE) is the required "aud" claim when set.
	JWTAudience string
	// JWKSURL (JWKS_URL, http or https) is where an identity provider
	// publishes RS256/ES256 keys; empty when not used.
	JWKSURL string

	// CORSOrigins (CORS_ORIGIN, comma-separated, default
	// "http://localhost:3000") are the browser origins allowed for HTTP with
	// credentials and for the WebSocket upgrade's Origin check. Each is
	// scheme://host[:port], lower-cased.
	CORSOrigins []string

	// RateLimitPerMin (RATE_LIMIT_PER_MIN, default 60) is client operations
	// (mutations, subscribes, presence updates) per user per minute.
	RateLimitPerMin int
	// MaxConnsPerIP (MAX_CONNS_PER_IP, default 100) bounds concurrent
	// WebSocket/SSE connections per client IP.
	MaxConnsPerIP int
	// MaxSubsPerConn (MAX_SUBS_PER_CONN, default 100) bounds active
	// subscriptions per connection.
	MaxSubsPerConn int
	// TrustedProxies (TRUSTED_PROXIES, comma-separated CIDRs or addresses,
	// default none) are the peers whose X-Forwarded-For / Forwarded name
	// the client's address.
	TrustedProxies []netip.Prefix
	// AbuseThreshold (ABUSE_THRESHOLD, default 20) refusals in a burst —
	// or a sustained rate above AbuseThreshold per AbuseWindow (default
	// 1m) — block a user or client IP for AbuseCooldown (ABUSE_COOLDOWN,
	// default 5m).
	AbuseThreshold int
	AbuseWindow    time.Duration
	AbuseCooldown  time.Duration

	// PresenceOfflineGrace (PRESENCE_OFFLINE_GRACE, default 30s) is how long
	// after a user's last connection closes before USER_OFFLINE.
	PresenceOfflineGrace time.Duration
	// PresenceAwayAfter (PRESENCE_AWAY_AFTER, default 5m) is how long a
	// connected user may be idle before being shown AWAY.
	PresenceAwayAfter time.Duration
	// PresenceInstanceTTL (PRESENCE_INSTANCE_TTL, default 15s; with
	// REDIS_URL) is how long an instance may miss its presence heartbeat
	// before the others close its connections: a killed instance's users
	// go OFFLINE max(PresenceInstanceTTL, PresenceOfflineGrace) after its
	// last heartbeat, plus up to two sweeps (250 ms each at most).
	PresenceInstanceTTL time.Duration
	// PresenceActivityInterval (PRESENCE_ACTIVITY_INTERVAL, default 1s) is
	// the least time between two USER_ACTIVITY events of one user: presence
	// changes within it are coalesced into one carrying the latest state.
	PresenceActivityInterval time.Duration
	// DrainTimeout (DRAIN_TIMEOUT, default 10s) is how long SIGTERM spreads
	// closing sockets before the process exits.
	DrainTimeout time.Duration

	// HistoryTTL (HISTORY_TTL, default 1h) is how far back a resume can
	// reach: the event log keeps entries younger than this.
	HistoryTTL time.Duration
	// HistoryMax (HISTORY_MAX, default 10000) is how many of the newest
	// log entries are kept for resumes.
	HistoryMax int
	// HistoryTrimEvery (HISTORY_TRIM_EVERY, default 1m) is how often each
	// instance trims the log to HistoryTTL and HistoryMax.
	HistoryTrimEvery time.Duration

	// AuditLog (AUDIT_LOG, default "stderr") is where audit records go:
	// "stderr", "stdout" or a file path.
	AuditLog string

	// WSInitTimeout (WS_INIT_TIMEOUT, default 3s) is how long a WebSocket
	// may stay without connection_init before it is closed 4408.
	WSInitTimeout time.Duration
	// WSPingInterval (WS_PING_INTERVAL, default 20s) is how often the server
	// pings each WebSocket; a peer silent for twice this is dropped.
	WSPingInterval time.Duration
	// WSWriteTimeout (WS_WRITE_TIMEOUT, default 10s) bounds each WebSocket
	// write; a peer that cannot take a frame in this time is dropped.
	WSWriteTimeout time.Duration
	// WSReadLimit (WS_READ_LIMIT, default 1 MiB) is the largest WebSocket
	// message accepted from a client, in bytes.
	WSReadLimit int64
	// WSSendQueue (WS_SEND_QUEUE, default 512) is how many frames may wait
	// to be written to one connection before it is dropped as a slow
	// consumer.
	WSSendQueue int
	// WSMessageTimeout (WS_MESSAGE_TIMEOUT, default 10s) is how long a
	// WebSocket message may take to arrive once its first frame has: a
	// message still unfinished (fragments without FIN) is closed 1008.
	WSMessageTimeout time.Duration

	// HTTPMaxBody (HTTP_MAX_BODY, default 1 MiB) is the largest HTTP request
	// body accepted, in bytes.
	HTTPMaxBody int64
	// HTTPBodyTimeout (HTTP_BODY_TIMEOUT, default 10s) is how long an HTTP
	// request body (a POST, an SSE request) may take to arrive; slower is
	// answered 408 and the connection closed.
	HTTPBodyTimeout time.Duration
	// MaxConns (MAX_CONNS) caps the open connections of the public
	// listener; more wait in the listen backlog until one closes. 0 (unset)
	// means the process's open-file limit minus a reserve (see
	// httplimits.go), so accepting never exhausts file descriptors.
	MaxConns int
	// GraphQLComplexityLimit (GRAPHQL_COMPLEXITY_LIMIT, default 1000) is the
	// highest operation cost executed: each field 1, __schema 500 more,
	// __type 50 more (gqlguard.Complexity).
	GraphQLComplexityLimit int
	// GraphQLIntrospection (GRAPHQL_INTROSPECTION, default true) answers
	// __schema and __type for authenticated clients; false refuses them.
	GraphQLIntrospection bool
	// GraphQLMaxTokens (GRAPHQL_MAX_TOKENS, default 15000) is the most
	// tokens a document may have.
	GraphQLMaxTokens int
	// GraphQLMaxErrors (GRAPHQL_MAX_ERRORS, default 20) is the most errors
	// a response carries; validation stops collecting after it.
	GraphQLMaxErrors int
	// GraphQLValidationBudget (GRAPHQL_VALIDATION_BUDGET, default 50000)
	// bounds validation: the nodes its walk may visit, and separately the
	// field comparisons that check same-named fields merge.
	GraphQLValidationBudget int
	// GraphQLQueryCacheBytes (GRAPHQL_QUERY_CACHE_BYTES, default 32 MiB)
	// bounds the cache of parsed documents, in bytes.
	GraphQLQueryCacheBytes int64
	// GraphQLMaxResponseBytes (GRAPHQL_MAX_RESPONSE_BYTES, default 16 MiB)
	// is the largest response data, in bytes.
	GraphQLMaxResponseBytes int64

	// LogLevel (LOG_LEVEL: debug, info, warn or error; default info) is the
	// least severe level logged.
	LogLevel slog.Level
	// LogFormat (LOG_FORMAT: text or json; default text) is the log line
	// encoding.
	LogFormat string

	// DebugAddr (DEBUG_ADDR, default unset) serves Go's /debug/pprof
	// profiles on a second listener, for operators; bind it to loopback or
	// a private interface, never to the public address.
	DebugAddr string

	// TLSCertFile and TLSKeyFile (TLS_CERT_FILE, TLS_KEY_FILE, default
	// unset) are PEM files: when set (both or neither) the server speaks
	// HTTPS and WSS on Addr, and follows their renewal. FromEnv checks that
	// they load as a pair (LoadTLSKeyPair).
	TLSCertFile string
	TLSKeyFile  string
}

// Defaults, in the units of the fields they fill.
const (
	defaultAddr        = ":8080"
	defaultDatabaseURL = "sqlite:taskpulse.db"
	defaultCORSOrigin  = "http://localhost:3000"
	defaultAuditLog    = "stderr"
	defaultRedisPrefix = "taskpulse"
	mebibyte           = 1 << 20
	minSecretLen       = 32
)

// VarError is one refused variable. FromEnv joins all of them (errors.Join),
// so errors.As finds the first and the joined message lists every one.
type VarError struct {
	Name    string // the variable, e.g. "HISTORY_TTL"
	Value   string // the value as given, with any URL credentials redacted
	Problem string // what is wrong, and what is expected
}

func (e *VarError) Error() string {
	return fmt.Sprintf("config: %s=%q: %s", e.Name, e.Value, e.Problem)
}

// FromEnv reads the configuration through getenv and validates it. It reports
// every bad variable at once; on error the returned Config is the zero value.
func FromEnv(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		Addr:        r.addr("ADDR", defaultAddr),
		DatabaseURL: r.str("DATABASE_URL", defaultDatabaseURL),
		RedisURL:    r.str("REDIS_URL", ""),
		// The secret is raw key bytes: no trimming, any content is a key.
		JWTSecret:   getenv("JWT_SECRET"),
		JWTIssuer:   r.str("JWT_ISSUER", ""),
		JWTAudience: r.str("JWT_AUDIENCE", ""),
		JWKSURL:     r.str("JWKS_URL", ""),
		CORSOrigins: r.origins("CORS_ORIGIN", defaultCORSOrigin),

		RateLimitPerMin: r.positiveInt("RATE_LIMIT_PER_MIN", 60),
		MaxConnsPerIP:   r.positiveInt("MAX_CONNS_PER_IP", 100),
		MaxSubsPerConn:  r.positiveInt("MAX_SUBS_PER_CONN", 100),
		TrustedProxies:  r.prefixes("TRUSTED_PROXIES"),
		AbuseThreshold:  r.positiveInt("ABUSE_THRESHOLD", 20),
		AbuseWindow:     r.duration("ABUSE_WINDOW", time.Minute),
		AbuseCooldown:   r.duration("ABUSE_COOLDOWN", 5*time.Minute),

		PresenceOfflineGrace: r.duration("PRESENCE_OFFLINE_GRACE", 30*time.Second),
		PresenceAwayAfter:    r.duration("PRESENCE_AWAY_AFTER", 5*time.Minute),
		DrainTimeout:         r.duration("DRAIN_TIMEOUT", 10*time.Second),
		HistoryTTL:           r.duration("HISTORY_TTL", time.Hour),
		HistoryMax:           r.positiveInt("HISTORY_MAX", 10000),
		HistoryTrimEvery:     r.duration("HISTORY_TRIM_EVERY", time.Minute),
		AuditLog:             r.str("AUDIT_LOG", defaultAuditLog),

		WSInitTimeout:  r.duration("WS_INIT_TIMEOUT", 3*time.Second),
		WSPingInterval: r.duration("WS_PING_INTERVAL", 20*time.Second),
		WSWriteTimeout: r.duration("WS_WRITE_TIMEOUT", 10*time.Second),
		WSReadLimit:    int64(r.positiveInt("WS_READ_LIMIT", mebibyte)),
		WSSendQueue:    r.positiveInt("WS_SEND_QUEUE", 512),

		WSMessageTimeout: r.duration("WS_MESSAGE_TIMEOUT", 10*time.Second),
		HTTPBodyTimeout:  r.duration("HTTP_BODY_TIMEOUT", 10*time.Second),
		MaxConns:         r.positiveInt("MAX_CONNS", 0),

		HTTPMaxBody:            int64(r.positiveInt("HTTP_MAX_BODY", mebibyte)),
		GraphQLComplexityLimit: r.positiveInt("GRAPHQL_COMPLEXITY_LIMIT", 1000),

		GraphQLIntrospection:    r.boolean("GRAPHQL_INTROSPECTION", true),
		GraphQLMaxTokens:        r.positiveInt("GRAPHQL_MAX_TOKENS", 15000),
		GraphQLMaxErrors:        r.positiveInt("GRAPHQL_MAX_ERRORS", 20),
		GraphQLValidationBudget: r.positiveInt("GRAPHQL_VALIDATION_BUDGET", 50000),
		GraphQLQueryCacheBytes:  int64(r.positiveInt("GRAPHQL_QUERY_CACHE_BYTES", 32*mebibyte)),
		GraphQLMaxResponseBytes: int64(r.positiveInt("GRAPHQL_MAX_RESPONSE_BYTES", 16*mebibyte)),

		// Ten per instance: several instances stay well under PostgreSQL's
		// default max_connections of 100.
		DatabaseMaxConns: r.positiveInt("DATABASE_MAX_CONNS", 10),

		LogLevel:  r.logLevel("LOG_LEVEL", slog.LevelInfo),
		LogFormat: r.oneOf("LOG_FORMAT", LogFormatText, LogFormatText, LogFormatJSON),
	}
	c.PresenceActivityInterval = r.duration("PRESENCE_ACTIVITY_INTERVAL", time.Second)
	c.PresenceInstanceTTL = r.duration("PRESENCE_INSTANCE_TTL", 15*time.Second)
	if c.PresenceInstanceTTL < time.Second {
		// Presence heartbeats every sweep, at most 250 ms apart; a TTL
		// near that would find live instances dead.
		r.fail("PRESENCE_INSTANCE_TTL", r.getenv("PRESENCE_INSTANCE_TTL"), "must be at least 1s")
	}
	c.RedisPrefix = r.redisPrefix("REDIS_PREFIX", defaultRedisPrefix)
	if v := r.str("DEBUG_ADDR", ""); v != "" {
		c.DebugAddr = r.hostPort("DEBUG_ADDR", v)
	}
	if n := len(c.JWTSecret); n > 0 && n < minSecretLen {
		// The value is a secret: the error says how long it is, not what.
		r.fail("JWT_SECRET", fmt.Sprintf("(%d bytes)", n), "must be at least %d bytes (HS256 needs a 256-bit key, RFC 7518 §3.2); make one with: openssl rand -hex 32", minSecretLen)
	}
	c.DatabaseKind, c.SQLitePath = r.database("DATABASE_URL", c.DatabaseURL)
	c.RedisMode = r.redisURL("REDIS_URL", c.RedisURL)
	r.httpURL("JWKS_URL", c.JWKSURL)
	c.TLSCertFile, c.TLSKeyFile = r.tlsFiles("TLS_CERT_FILE", "TLS_KEY_FILE")

	if err := errors.Join(r.errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LogValue lets the Config be logged whole without leaking the JWT secret or
// credentials inside the database and Redis URLs.
func (c Config) LogValue() slog.Value {
	secret := "generated"
	if c.JWTSecret != "" {
		secret = "set"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("database", redactURL(c.DatabaseURL)),
		slog.Int("databaseMaxConns", c.DatabaseMaxConns),
		slog.String("redis", redactURL(c.RedisURL)),
		slog.String("redisMode", c.RedisMode),
		slog.String("redisPrefix", c.RedisPrefix),
		slog.String("jwtSecret", secret),
		slog.String("jwtIssuer", c.JWTIssuer),
		slog.String("jwtAudience", c.JWTAudience),
		slog.String("jwksURL", c.JWKSURL),
		slog.Any("corsOrigins", c.CORSOrigins),
		slog.Int("rateLimitPerMin", c.RateLimitPerMin),
		slog.Int("maxConnsPerIP", c.MaxConnsPerIP),
		slog.Int("maxSubsPerConn", c.MaxSubsPerConn),
		slog.Any("trustedProxies", c.TrustedProxies),
		slog.Int("abuseThreshold", c.AbuseThreshold),
		slog.Duration("abuseWindow", c.AbuseWindow),
		slog.Duration("abuseCooldown", c.AbuseCooldown),
		slog.Duration("presenceOfflineGrace", c.PresenceOfflineGrace),
		slog.Duration("presenceAwayAfter", c.PresenceAwayAfter),
		slog.Duration("presenceActivityInterval", c.PresenceActivityInterval),
		slog.Duration("presenceInstanceTTL", c.PresenceInstanceTTL),
		slog.Duration("drainTimeout", c.DrainTimeout),
		slog.Duration("historyTTL", c.HistoryTTL),
		slog.Int("historyMax", c.HistoryMax),
		slog.Duration("historyTrimEvery", c.HistoryTrimEvery),
		slog.String("auditLog", c.AuditLog),
		slog.Duration("wsInitTimeout", c.WSInitTimeout),
		slog.Duration("wsPingInterval", c.WSPingInterval),
		slog.Duration("wsWriteTimeout", c.WSWriteTimeout),
		slog.Int64("wsReadLimit", c.WSReadLimit),
		slog.Int("wsSendQueue", c.WSSendQueue),
		slog.Int64("httpMaxBody", c.HTTPMaxBody),
		slog.Duration("wsMessageTimeout", c.WSMessageTimeout),
		slog.Duration("httpBodyTimeout", c.HTTPBodyTimeout),
		slog.Int("maxConns", c.MaxConns),
		slog.Int("graphqlComplexityLimit", c.GraphQLComplexityLimit),
		slog.Bool("graphqlIntrospection", c.GraphQLIntrospection),
		slog.Int("graphqlMaxTokens", c.GraphQLMaxTokens),
		slog.Int("graphqlMaxErrors", c.GraphQLMaxErrors),
		slog.Int("graphqlValidationBudget", c.GraphQLValidationBudget),
		slog.Int64("graphqlQueryCacheBytes", c.GraphQLQueryCacheBytes),
		slog.Int64("graphqlMaxResponseBytes", c.GraphQLMaxResponseBytes),
		slog.String("logLevel", c.LogLevel.String()),
		slog.String("logFormat", c.LogFormat),
		slog.String("tlsCertFile", c.TLSCertFile),
		slog.String("tlsKeyFile", c.TLSKeyFile),
	)
}
