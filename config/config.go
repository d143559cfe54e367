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
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
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

	// RedisURL (REDIS_URL, default unset) selects the Redis broker so many
	// instances share events: "redis://host:port/db" or "rediss://…".
	// Empty means the in-process broker (a single instance).
	RedisURL string

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
	// PresenceActivityInterval (PRESENCE_ACTIVITY_INTERVAL, default 1s) is
	// the least time between two USER_ACTIVITY events of one user: presence
	// changes within it are coalesced into one carrying the latest state.
	PresenceActivityInterval time.Duration
	// DrainTimeout (DRAIN_TIMEOUT, default 10s) is how long SIGTERM spreads
	// closing sockets before the process exits.
	DrainTimeout time.Duration

	// HistoryTTL (HISTORY_TTL, default 1h) is how far back a resume can
	// reach, per stream.
	HistoryTTL time.Duration
	// HistoryMax (HISTORY_MAX, default 10000) is how many events are kept
	// per stream for resumes.
	HistoryMax int

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
	if v := r.str("DEBUG_ADDR", ""); v != "" {
		c.DebugAddr = r.hostPort("DEBUG_ADDR", v)
	}
	if n := len(c.JWTSecret); n > 0 && n < minSecretLen {
		// The value is a secret: the error says how long it is, not what.
		r.fail("JWT_SECRET", fmt.Sprintf("(%d bytes)", n), "must be at least %d bytes (HS256 needs a 256-bit key, RFC 7518 §3.2); make one with: openssl rand -hex 32", minSecretLen)
	}
	c.DatabaseKind, c.SQLitePath = r.database("DATABASE_URL", c.DatabaseURL)
	r.redisURL("REDIS_URL", c.RedisURL)
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
		slog.Duration("drainTimeout", c.DrainTimeout),
		slog.Duration("historyTTL", c.HistoryTTL),
		slog.Int("historyMax", c.HistoryMax),
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

// reader reads variables and collects every problem instead of stopping at
// the first, so an operator fixes the environment in one go.
type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(name, value, format string, args ...any) {
	r.errs = append(r.errs, &VarError{Name: name, Value: value, Problem: fmt.Sprintf(format, args...)})
}

// str returns the trimmed value, or def when empty.
func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) positiveInt(name string, def int) int {
	return positive(r, name, def, strconv.Atoi, "want a whole number")
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	return positive(r, name, def, time.ParseDuration, "want a duration such as 500ms, 30s or 5m")
}

// positive reads a number-like variable that must be greater than zero;
// unset means def, unparsable or non-positive is reported.
func positive[T int | time.Duration](r *reader, name string, def T, parse func(string) (T, error), want string) T {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := parse(v)
	if err != nil {
		r.fail(name, v, "%s", want)
		return def
	}
	if n <= 0 {
		r.fail(name, v, "must be greater than 0")
		return def
	}
	return n
}

// boolean reads true/false (also 1/0, yes/no, on/off); unset means def.
func (r *reader) boolean(name string, def bool) bool {
	switch v := strings.ToLower(r.str(name, "")); v {
	case "":
		return def
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	default:
		r.fail(name, r.getenv(name), "want true or false")
		return def
	}
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	r.fail(name, v, "want one of %s", strings.Join(allowed, ", "))
	return def
}

func (r *reader) logLevel(name string, def slog.Level) slog.Level {
	levels := map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError,
	}
	v := r.str(name, "")
	if v == "" {
		return def
	}
	if l, ok := levels[strings.ToLower(v)]; ok {
		return l
	}
	r.fail(name, v, "want one of debug, info, warn, error")
	return def
}

func (r *reader) addr(name, def string) string { return r.hostPort(name, r.str(name, def)) }

// hostPort checks v is host:port with a port from 0 to 65535.
func (r *reader) hostPort(name, v string) string {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		r.fail(name, v, "want host:port, such as :8080 or 127.0.0.1:8080")
		return v
	}
	if !validPort(port, true) {
		r.fail(name, v, "port must be a number from 0 to 65535")
	}
	return v
}

// validPort reports whether p is a decimal port; zero (pick any) only when
// allowed.
func validPort(p string, zeroOK bool) bool {
	n, err := strconv.Atoi(p)
	if err != nil || strings.HasPrefix(p, "+") || n > 65535 || n < 0 {
		return false
	}
	return n > 0 || zeroOK
}

// database splits DATABASE_URL into its kind and, for SQLite, the path.
func (r *reader) database(name, v string) (kind, sqlitePath string) {
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok {
		r.fail(name, redactURL(v), "want sqlite:<path>, sqlite::memory: or postgres://…")
		return "", ""
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if rest == "" {
			r.fail(name, v, "sqlite: needs a path, such as sqlite:taskpulse.db or sqlite::memory:")
			return "", ""
		}
		return DatabaseSQLite, rest
	case "postgres", "postgresql":
		if r.url(name, v, "a postgres:// URL", false, "postgres", "postgresql") == nil {
			return "", ""
		}
		return DatabasePostgres, ""
	default:
		r.fail(name, redactURL(v), "unknown database scheme %q: want sqlite: or postgres://", scheme)
		return "", ""
	}
}

func (r *reader) redisURL(name, v string) {
	if v == "" {
		return
	}
	u := r.url(name, v, "a redis:// or rediss:// URL", false, "redis", "rediss")
	if u == nil {
		return
	}
	if u.Host == "" {
		r.fail(name, redactURL(v), "missing host: want redis://host:port/db")
		return
	}
	if p := u.Port(); p != "" && !validPort(p, false) {
		r.fail(name, redactURL(v), "port must be a number from 1 to 65535")
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			r.fail(name, redactURL(v), "database must be a number, as in redis://host:6379/0")
		}
	}
}

func (r *reader) httpURL(name, v string) {
	if v == "" {
		return
	}
	r.url(name, v, "an http:// or https:// URL with a host", true, "http", "https")
}

// url parses v as a URL with one of schemes (and a host when needHost);
// nil after reporting the problem, with any password redacted.
func (r *reader) url(name, v, want string, needHost bool, schemes ...string) *url.URL {
	u, err := url.Parse(v)
	if err != nil {
		r.fail(name, redactURL(v), "not a valid URL")
		return nil
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) || (needHost && u.Host == "") {
		r.fail(name, redactURL(v), "want %s", want)
		return nil
	}
	return u
}

// prefixes parses a comma-separated list of CIDRs (10.0.0.0/8,
// fd00::/8) or single addresses (a /32 or /128); nil when unset. A CIDR
// with host bits set (10.0.0.1/8) is refused: it reads as one address but
// would trust a whole network.
func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for s := range strings.SplitSeq(r.str(name, ""), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			switch {
			case err != nil:
				r.fail(name, s, "want a CIDR such as 10.0.0.0/8 or an address such as 192.0.2.7")
			case p != p.Masked():
				r.fail(name, s, "host bits set: did you mean %s?", p.Masked())
			default:
				out = append(out, unmapPrefix(p))
			}
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			r.fail(name, s, "want a CIDR such as 10.0.0.0/8 or an address such as 192.0.2.7")
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into
// its IPv4 one, as addresses are compared unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// origins parses a comma-separated list of browser origins. An origin is
// what browsers send in the Origin header, so anything more (a path, a
// trailing slash, a wildcard) could never match and is refused.
func (r *reader) origins(name, def string) []string {
	var out []string
	bad := false
	for o := range strings.SplitSeq(r.str(name, def), ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		norm, problem := parseOrigin(o)
		if problem != "" {
			r.fail(name, o, "%s", problem)
			bad = true
			continue
		}
		out = append(out, norm)
	}
	if len(out) == 0 && !bad {
		r.fail(name, r.getenv(name), "want at least one origin, such as http://localhost:3000")
	}
	return out
}

func parseOrigin(o string) (string, string) {
	const want = "want scheme://host[:port], such as https://app.example.com"
	u, err := url.Parse(o)
	if err != nil {
		return "", "not a valid origin: " + want
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "scheme must be http or https: " + want
	}
	if u.Host == "" || u.Hostname() == "" || u.Hostname() == "*" {
		return "", "missing host: " + want
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery ||
		strings.HasSuffix(o, "#") {
		return "", "an origin has no path, query or credentials: " + want
	}
	if p := u.Port(); p != "" && !validPort(p, false) {
		return "", "port must be a number from 1 to 65535"
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", "empty port: " + want
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), ""
}

// redactURL hides the password of a URL, also when it does not parse (an
// error message must not carry a credential into the logs).
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		start := strings.Index(s, "://")
		if start < 0 || start+3 > at {
			start = -3
		}
		return s[:start+3] + "xxxxx" + s[at:]
	}
	return s
}
