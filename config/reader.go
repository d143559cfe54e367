// reader.go: turning one variable's text into a typed, validated value.

package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

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

// redisURL checks REDIS_URL and returns its topology ("" when unset).
func (r *reader) redisURL(name, v string) string {
	if v == "" {
		return ""
	}
	t, err := ParseRedisURL(v)
	if err != nil {
		r.fail(name, redactURL(v), "%v", err)
		return ""
	}
	return t.Mode
}

// redisPrefix checks REDIS_PREFIX: it starts every key, so it is kept to
// characters no tool misreads, and without braces, which would make it a
// Cluster hash tag putting every key of every instance in one slot.
func (r *reader) redisPrefix(name, def string) string {
	v := r.str(name, def)
	if len(v) > 64 {
		r.fail(name, v, "at most 64 characters")
		return def
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.:", c)) {
			r.fail(name, v, "use letters, digits and _ - . : only (braces would make a Cluster hash tag: every key in one slot)")
			return def
		}
	}
	return v
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

// Redact is rawURL with its passwords hidden (redactURL), for logs and
// messages outside this package.
func Redact(rawURL string) string { return redactURL(rawURL) }

// redactURL hides the passwords of a URL — its user's, and those of query
// parameters (secretParams) — also when it does not parse: an error
// message must not carry a credential into the logs.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	s = secretParam.ReplaceAllString(s, "${1}xxxxx")
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

// secretParam matches a query parameter of secretParams and its value.
var secretParam = regexp.MustCompile(`(?i)([?&](?:sentinel_)?password=)[^&#]*`)
