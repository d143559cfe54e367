package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env is a map-backed getenv.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func defaults() Config {
	c := Config{
		Addr:                   ":8080",
		DatabaseURL:            "sqlite:taskpulse.db",
		DatabaseKind:           DatabaseSQLite,
		SQLitePath:             "taskpulse.db",
		DatabaseMaxConns:       10,
		CORSOrigins:            []string{"http://localhost:3000"},
		RateLimitPerMin:        60,
		MaxConnsPerIP:          100,
		MaxSubsPerConn:         100,
		AbuseThreshold:         20,
		AbuseWindow:            time.Minute,
		AbuseCooldown:          5 * time.Minute,
		PresenceOfflineGrace:   30 * time.Second,
		PresenceAwayAfter:      5 * time.Minute,
		DrainTimeout:           10 * time.Second,
		HistoryTTL:             time.Hour,
		HistoryMax:             10000,
		HistoryTrimEvery:       time.Minute,
		AuditLog:               "stderr",
		RedisPrefix:            "taskpulse",
		PresenceInstanceTTL:    15 * time.Second,
		WSInitTimeout:          3 * time.Second,
		WSPingInterval:         20 * time.Second,
		WSWriteTimeout:         10 * time.Second,
		WSReadLimit:            1 << 20,
		WSSendQueue:            512,
		HTTPMaxBody:            1 << 20,
		WSMessageTimeout:       10 * time.Second,
		HTTPBodyTimeout:        10 * time.Second,
		GraphQLComplexityLimit: 1000,
		LogLevel:               slog.LevelInfo,
		LogFormat:              "text",

		GraphQLIntrospection:    true,
		GraphQLMaxTokens:        15000,
		GraphQLMaxErrors:        20,
		GraphQLValidationBudget: 50000,
		GraphQLQueryCacheBytes:  32 << 20,
		GraphQLMaxResponseBytes: 16 << 20,
	}
	c.PresenceActivityInterval = time.Second
	return c
}

func TestDefaults(t *testing.T) {
	got, err := FromEnv(env(nil))
	if err != nil {
		t.Fatalf("FromEnv(empty) error: %v", err)
	}
	if want := defaults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestOverrides(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		apply func(*Config)
	}{
		{"addr", map[string]string{"ADDR": "127.0.0.1:0"}, func(c *Config) { c.Addr = "127.0.0.1:0" }},
		{"addr ipv6", map[string]string{"ADDR": "[::1]:9090"}, func(c *Config) { c.Addr = "[::1]:9090" }},
		{"addr trimmed", map[string]string{"ADDR": "  :9000 "}, func(c *Config) { c.Addr = ":9000" }},
		{"sqlite path", map[string]string{"DATABASE_URL": "sqlite:/var/lib/tp.db"}, func(c *Config) {
			c.DatabaseURL, c.SQLitePath = "sqlite:/var/lib/tp.db", "/var/lib/tp.db"
		}},
		{"sqlite memory", map[string]string{"DATABASE_URL": "sqlite::memory:"}, func(c *Config) {
			c.DatabaseURL, c.SQLitePath = "sqlite::memory:", ":memory:"
		}},
		{"postgres", map[string]string{"DATABASE_URL": "postgres://u:p@db:5432/tp?sslmode=disable"}, func(c *Config) {
			c.DatabaseURL, c.DatabaseKind, c.SQLitePath = "postgres://u:p@db:5432/tp?sslmode=disable", DatabasePostgres, ""
		}},
		{"postgresql", map[string]string{"DATABASE_URL": "postgresql:///tp?host=/run/postgresql"}, func(c *Config) {
			c.DatabaseURL, c.DatabaseKind, c.SQLitePath = "postgresql:///tp?host=/run/postgresql", DatabasePostgres, ""
		}},
		{"redis", map[string]string{"REDIS_URL": "redis://localhost:6379/2"}, func(c *Config) {
			c.RedisURL, c.RedisMode = "redis://localhost:6379/2", RedisSingle
		}},
		{"rediss", map[string]string{"REDIS_URL": "rediss://:pw@cache.example.com"}, func(c *Config) {
			c.RedisURL, c.RedisMode = "rediss://:pw@cache.example.com", RedisSingle
		}},
		{"redis cluster", map[string]string{"REDIS_URL": "redis+cluster://h1:7000,h2:7001"}, func(c *Config) {
			c.RedisURL, c.RedisMode = "redis+cluster://h1:7000,h2:7001", RedisCluster
		}},
		{"redis sentinel", map[string]string{"REDIS_URL": "redis+sentinel://s1,s2/mymaster"}, func(c *Config) {
			c.RedisURL, c.RedisMode = "redis+sentinel://s1,s2/mymaster", RedisSentinel
		}},
		{"redis prefix", map[string]string{"REDIS_PREFIX": "tp-prod:eu.1"}, func(c *Config) { c.RedisPrefix = "tp-prod:eu.1" }},
		{"instance ttl", map[string]string{"PRESENCE_INSTANCE_TTL": "5s"}, func(c *Config) { c.PresenceInstanceTTL = 5 * time.Second }},
		{"jwt secret kept raw", map[string]string{"JWT_SECRET": " 0123456789abcdef0123456789abcdef "}, func(c *Config) { c.JWTSecret = " 0123456789abcdef0123456789abcdef " }},
		{"jwt issuer", map[string]string{"JWT_ISSUER": "https://id.example.com"}, func(c *Config) { c.JWTIssuer = "https://id.example.com" }},
		{"debug addr", map[string]string{"DEBUG_ADDR": "127.0.0.1:6061"}, func(c *Config) { c.DebugAddr = "127.0.0.1:6061" }},
		{"jwt audience", map[string]string{"JWT_AUDIENCE": "taskpulse"}, func(c *Config) { c.JWTAudience = "taskpulse" }},
		{"jwks", map[string]string{"JWKS_URL": "https://id.example.com/.well-known/jwks.json"}, func(c *Config) {
			c.JWKSURL = "https://id.example.com/.well-known/jwks.json"
		}},
		{"cors list", map[string]string{"CORS_ORIGIN": "https://App.Example.com, http://localhost:5173,,"}, func(c *Config) {
			c.CORSOrigins = []string{"https://app.example.com", "http://localhost:5173"}
		}},
		{"cors ipv6", map[string]string{"CORS_ORIGIN": "http://[::1]:3000"}, func(c *Config) { c.CORSOrigins = []string{"http://[::1]:3000"} }},
		{"rate limit", map[string]string{"RATE_LIMIT_PER_MIN": "600"}, func(c *Config) { c.RateLimitPerMin = 600 }},
		{"conns per ip", map[string]string{"MAX_CONNS_PER_IP": "5"}, func(c *Config) { c.MaxConnsPerIP = 5 }},
		{"subs per conn", map[string]string{"MAX_SUBS_PER_CONN": "7"}, func(c *Config) { c.MaxSubsPerConn = 7 }},
		{"database pool", map[string]string{"DATABASE_MAX_CONNS": "25"}, func(c *Config) { c.DatabaseMaxConns = 25 }},
		{"trusted proxies", map[string]string{"TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1,::ffff:172.16.0.0/108,"}, func(c *Config) {
			c.TrustedProxies = []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
				netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("172.16.0.0/12"),
			}
		}},
		{"abuse threshold", map[string]string{"ABUSE_THRESHOLD": "5"}, func(c *Config) { c.AbuseThreshold = 5 }},
		{"abuse window", map[string]string{"ABUSE_WINDOW": "30s"}, func(c *Config) { c.AbuseWindow = 30 * time.Second }},
		{"abuse cooldown", map[string]string{"ABUSE_COOLDOWN": "1h"}, func(c *Config) { c.AbuseCooldown = time.Hour }},
		{"offline grace", map[string]string{"PRESENCE_OFFLINE_GRACE": "1500ms"}, func(c *Config) { c.PresenceOfflineGrace = 1500 * time.Millisecond }},
		{"away after", map[string]string{"PRESENCE_AWAY_AFTER": "2m30s"}, func(c *Config) { c.PresenceAwayAfter = 150 * time.Second }},
		{"activity interval", map[string]string{"PRESENCE_ACTIVITY_INTERVAL": "250ms"}, func(c *Config) { c.PresenceActivityInterval = 250 * time.Millisecond }},
		{"drain", map[string]string{"DRAIN_TIMEOUT": "1s"}, func(c *Config) { c.DrainTimeout = time.Second }},
		{"history ttl", map[string]string{"HISTORY_TTL": "24h"}, func(c *Config) { c.HistoryTTL = 24 * time.Hour }},
		{"history max", map[string]string{"HISTORY_MAX": "50"}, func(c *Config) { c.HistoryMax = 50 }},
		{"audit log", map[string]string{"AUDIT_LOG": "/var/log/tp-audit.log"}, func(c *Config) { c.AuditLog = "/var/log/tp-audit.log" }},
		{"ws init", map[string]string{"WS_INIT_TIMEOUT": "250ms"}, func(c *Config) { c.WSInitTimeout = 250 * time.Millisecond }},
		{"ws ping", map[string]string{"WS_PING_INTERVAL": "5s"}, func(c *Config) { c.WSPingInterval = 5 * time.Second }},
		{"ws write", map[string]string{"WS_WRITE_TIMEOUT": "2s"}, func(c *Config) { c.WSWriteTimeout = 2 * time.Second }},
		{"ws read limit", map[string]string{"WS_READ_LIMIT": "65536"}, func(c *Config) { c.WSReadLimit = 65536 }},
		{"ws send queue", map[string]string{"WS_SEND_QUEUE": "16"}, func(c *Config) { c.WSSendQueue = 16 }},
		{"http max body", map[string]string{"HTTP_MAX_BODY": "4096"}, func(c *Config) { c.HTTPMaxBody = 4096 }},
		{"ws message timeout", map[string]string{"WS_MESSAGE_TIMEOUT": "2s"}, func(c *Config) { c.WSMessageTimeout = 2 * time.Second }},
		{"http body timeout", map[string]string{"HTTP_BODY_TIMEOUT": "500ms"}, func(c *Config) { c.HTTPBodyTimeout = 500 * time.Millisecond }},
		{"max conns", map[string]string{"MAX_CONNS": "5000"}, func(c *Config) { c.MaxConns = 5000 }},
		{"complexity", map[string]string{"GRAPHQL_COMPLEXITY_LIMIT": "200"}, func(c *Config) { c.GraphQLComplexityLimit = 200 }},
		{"introspection off", map[string]string{"GRAPHQL_INTROSPECTION": "false"}, func(c *Config) { c.GraphQLIntrospection = false }},
		{"introspection 0", map[string]string{"GRAPHQL_INTROSPECTION": "0"}, func(c *Config) { c.GraphQLIntrospection = false }},
		{"introspection on", map[string]string{"GRAPHQL_INTROSPECTION": " TRUE "}, func(c *Config) { c.GraphQLIntrospection = true }},
		{"max tokens", map[string]string{"GRAPHQL_MAX_TOKENS": "500"}, func(c *Config) { c.GraphQLMaxTokens = 500 }},
		{"max errors", map[string]string{"GRAPHQL_MAX_ERRORS": "3"}, func(c *Config) { c.GraphQLMaxErrors = 3 }},
		{"validation budget", map[string]string{"GRAPHQL_VALIDATION_BUDGET": "1000"}, func(c *Config) { c.GraphQLValidationBudget = 1000 }},
		{"query cache bytes", map[string]string{"GRAPHQL_QUERY_CACHE_BYTES": "1048576"}, func(c *Config) { c.GraphQLQueryCacheBytes = 1 << 20 }},
		{"max response bytes", map[string]string{"GRAPHQL_MAX_RESPONSE_BYTES": "65536"}, func(c *Config) { c.GraphQLMaxResponseBytes = 65536 }},
		{"log level debug", map[string]string{"LOG_LEVEL": "debug"}, func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{"log level upper", map[string]string{"LOG_LEVEL": "WARN"}, func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{"log level error", map[string]string{"LOG_LEVEL": "error"}, func(c *Config) { c.LogLevel = slog.LevelError }},
		{"log format json", map[string]string{"LOG_FORMAT": "JSON"}, func(c *Config) { c.LogFormat = "json" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(tt.env))
			if err != nil {
				t.Fatalf("FromEnv(%v) error: %v", tt.env, err)
			}
			want := defaults()
			tt.apply(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("FromEnv(%v):\n got %+v\nwant %+v", tt.env, got, want)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name, key, value string
		wantMsg          string // part of the problem text
	}{
		{"addr no port", "ADDR", "localhost", "host:port"},
		{"debug addr no port", "DEBUG_ADDR", "localhost", "host:port"},
		{"jwt secret too short", "JWT_SECRET", "31-bytes-is-not-256-bits-at-all", "at least 32 bytes"},
		{"addr bad port", "ADDR", ":http", "port must be"},
		{"addr big port", "ADDR", ":70000", "port must be"},
		{"db unknown scheme", "DATABASE_URL", "mysql://db/tp", "unknown database scheme"},
		{"db no scheme", "DATABASE_URL", "taskpulse.db", "want sqlite:"},
		{"db empty sqlite path", "DATABASE_URL", "sqlite:", "needs a path"},
		{"db bad postgres url", "DATABASE_URL", "postgres://db:5432/%zz", "not a valid URL"},
		{"redis wrong scheme", "REDIS_URL", "http://localhost:6379", "redis://"},
		{"redis no host", "REDIS_URL", "redis:///0", "missing host"},
		{"redis bad db", "REDIS_URL", "redis://localhost:6379/zero", "invalid database number"},
		{"redis bad port", "REDIS_URL", "redis://localhost:99999", "port must be"},
		{"redis unparsable", "REDIS_URL", "redis://local host:6379", "not a host name"},
		{"redis prefix braces", "REDIS_PREFIX", "tp{x}", "hash tag"},
		{"redis prefix space", "REDIS_PREFIX", "tp prod", "letters, digits"},
		{"instance ttl short", "PRESENCE_INSTANCE_TTL", "500ms", "at least 1s"},
		{"instance ttl bad", "PRESENCE_INSTANCE_TTL", "soon", "duration"},
		{"jwks not http", "JWKS_URL", "ftp://id.example.com/jwks", "http:// or https://"},
		{"jwks relative", "JWKS_URL", "/jwks.json", "http:// or https://"},
		{"cors path", "CORS_ORIGIN", "http://localhost:3000/app", "no path"},
		{"cors trailing slash", "CORS_ORIGIN", "http://localhost:3000/", "no path"},
		{"cors wildcard", "CORS_ORIGIN", "*", "scheme must be http or https"},
		{"cors wildcard host", "CORS_ORIGIN", "https://*", "missing host"},
		{"cors no scheme", "CORS_ORIGIN", "localhost:3000", "scheme must be"},
		{"cors ws scheme", "CORS_ORIGIN", "ws://localhost:3000", "scheme must be"},
		{"cors query", "CORS_ORIGIN", "http://localhost:3000?x=1", "no path"},
		{"cors credentials", "CORS_ORIGIN", "http://u:p@localhost:3000", "no path"},
		{"cors empty port", "CORS_ORIGIN", "http://localhost:", "empty port"},
		{"cors only commas", "CORS_ORIGIN", " , ", "at least one origin"},
		{"rate not int", "RATE_LIMIT_PER_MIN", "sixty", "whole number"},
		{"rate zero", "RATE_LIMIT_PER_MIN", "0", "greater than 0"},
		{"conns negative", "MAX_CONNS_PER_IP", "-1", "greater than 0"},
		{"subs float", "MAX_SUBS_PER_CONN", "1.5", "whole number"},
		{"database pool zero", "DATABASE_MAX_CONNS", "0", "greater than 0"},
		{"database pool word", "DATABASE_MAX_CONNS", "many", "whole number"},
		{"trusted proxies not an address", "TRUSTED_PROXIES", "proxy.internal", "want a CIDR"},
		{"trusted proxies bad mask", "TRUSTED_PROXIES", "10.0.0.0/33", "want a CIDR"},
		{"trusted proxies host bits", "TRUSTED_PROXIES", "10.1.2.3/8", "did you mean 10.0.0.0/8"},
		{"trusted proxies zone", "TRUSTED_PROXIES", "fe80::1%eth0", "want a CIDR"},
		{"abuse threshold zero", "ABUSE_THRESHOLD", "0", "greater than 0"},
		{"abuse window unitless", "ABUSE_WINDOW", "60", "duration"},
		{"abuse cooldown negative", "ABUSE_COOLDOWN", "-5m", "greater than 0"},
		{"history max overflow", "HISTORY_MAX", "99999999999999999999", "whole number"},
		{"grace not duration", "PRESENCE_OFFLINE_GRACE", "30", "duration"},
		{"away negative", "PRESENCE_AWAY_AFTER", "-5m", "greater than 0"},
		{"activity interval zero", "PRESENCE_ACTIVITY_INTERVAL", "0s", "greater than 0"},
		{"activity interval bad", "PRESENCE_ACTIVITY_INTERVAL", "fast", "duration"},
		{"drain zero", "DRAIN_TIMEOUT", "0s", "greater than 0"},
		{"history ttl bad", "HISTORY_TTL", "1 hour", "duration"},
		{"ws init zero", "WS_INIT_TIMEOUT", "0", "greater than 0"},
		{"ws ping bad", "WS_PING_INTERVAL", "often", "duration"},
		{"ws write negative", "WS_WRITE_TIMEOUT", "-1s", "greater than 0"},
		{"ws read limit unit", "WS_READ_LIMIT", "1MiB", "whole number"},
		{"ws send queue zero", "WS_SEND_QUEUE", "0", "greater than 0"},
		{"http body negative", "HTTP_MAX_BODY", "-10", "greater than 0"},
		{"ws message timeout zero", "WS_MESSAGE_TIMEOUT", "0s", "greater than 0"},
		{"ws message timeout unitless", "WS_MESSAGE_TIMEOUT", "10", "duration"},
		{"http body timeout negative", "HTTP_BODY_TIMEOUT", "-1s", "greater than 0"},
		{"max conns zero", "MAX_CONNS", "0", "greater than 0"},
		{"max conns not a number", "MAX_CONNS", "lots", "whole number"},
		{"complexity bad", "GRAPHQL_COMPLEXITY_LIMIT", "lots", "whole number"},
		{"introspection bad", "GRAPHQL_INTROSPECTION", "maybe", "true or false"},
		{"max tokens zero", "GRAPHQL_MAX_TOKENS", "0", "greater than 0"},
		{"max errors negative", "GRAPHQL_MAX_ERRORS", "-1", "greater than 0"},
		{"validation budget bad", "GRAPHQL_VALIDATION_BUDGET", "1e5", "whole number"},
		{"query cache unit", "GRAPHQL_QUERY_CACHE_BYTES", "32MiB", "whole number"},
		{"response bytes zero", "GRAPHQL_MAX_RESPONSE_BYTES", "0", "greater than 0"},
		{"log level", "LOG_LEVEL", "verbose", "debug, info, warn, error"},
		{"log format", "LOG_FORMAT", "yaml", "text, json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(map[string]string{tt.key: tt.value}))
			if err == nil {
				t.Fatalf("FromEnv(%s=%q) accepted: %+v", tt.key, tt.value, got)
			}
			var ve *VarError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *VarError", err)
			}
			if ve.Name != tt.key {
				t.Errorf("VarError.Name = %q, want %q", ve.Name, tt.key)
			}
			if !strings.Contains(ve.Problem, tt.wantMsg) {
				t.Errorf("VarError.Problem = %q, want it to mention %q", ve.Problem, tt.wantMsg)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.key) {
				t.Errorf("message %q does not name %s", msg, tt.key)
			}
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("Config on error = %+v, want zero", got)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := FromEnv(env(map[string]string{
		"ADDR":         "nope",
		"HISTORY_TTL":  "forever",
		"HISTORY_MAX":  "0",
		"CORS_ORIGIN":  "http://ok.example.com,http://bad.example.com/path",
		"DATABASE_URL": "mongodb://db",
		"LOG_FORMAT":   "xml",
	}))
	if err == nil {
		t.Fatal("bad environment accepted")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not join its causes", err)
	}
	var names []string
	for _, e := range joined.Unwrap() {
		var ve *VarError
		if !errors.As(e, &ve) {
			t.Fatalf("cause %v is not a *VarError", e)
		}
		names = append(names, ve.Name)
	}
	want := []string{"ADDR", "CORS_ORIGIN", "HISTORY_TTL", "HISTORY_MAX", "LOG_FORMAT", "DATABASE_URL"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("reported variables = %v, want %v", names, want)
	}
	if msg := err.Error(); !strings.Contains(msg, `"http://bad.example.com/path"`) || !strings.Contains(msg, `"forever"`) {
		t.Errorf("message does not quote the bad values: %s", msg)
	}
}

// A password inside a refused URL must not reach the error text.
func TestErrorsRedactCredentials(t *testing.T) {
	for _, tt := range []struct{ key, value string }{
		{"DATABASE_URL", "mysql://admin:hunter2@db/tp"},
		{"DATABASE_URL", "postgres://admin:hunter2@db:5432/%zz"},
		{"REDIS_URL", "http://:hunter2@cache:6379"},
		{"REDIS_URL", "redis://:hunter2@cache host:6379"},
	} {
		_, err := FromEnv(env(map[string]string{tt.key: tt.value}))
		if err == nil {
			t.Fatalf("%s=%q accepted", tt.key, tt.value)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s error leaks the password: %v", tt.key, err)
		}
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"JWT_SECRET":   "topsecretkey-topsecretkey-topsecretkey",
		"DATABASE_URL": "postgres://app:hunter2@db/tp",
		"REDIS_URL":    "redis://:hunter3@cache:6379/0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "cfg", c)
	out := b.String()
	for _, secret := range []string{"topsecretkey", "hunter2", "hunter3"} {
		if strings.Contains(out, secret) {
			t.Errorf("logged config contains %q: %s", secret, out)
		}
	}
	for _, want := range []string{"cfg.jwtSecret=set", "cfg.addr=:8080", "cfg.historyMax=10000", "db/tp"} {
		if !strings.Contains(out, want) {
			t.Errorf("logged config lacks %q: %s", want, out)
		}
	}
}
