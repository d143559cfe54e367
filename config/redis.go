// redis.go: REDIS_URL, the Redis deployment it names (one server, a
// Cluster, or a master watched by Sentinel), as go-redis options.

package config

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis topologies, the values of Config.RedisMode and RedisTarget.Mode.
const (
	RedisSingle   = "single"
	RedisCluster  = "cluster"
	RedisSentinel = "sentinel"
)

// Default ports where a REDIS_URL host has none.
const (
	redisPort    = "6379"
	sentinelPort = "26379"
)

// RedisTarget is the Redis deployment a REDIS_URL names, as go-redis
// options: exactly one of Single, Cluster and Sentinel is set, as Mode says.
//
// The URL forms (each also with TLS: rediss, rediss+cluster,
// rediss+sentinel; any go-redis option as a query parameter, e.g.
// ?dial_timeout=3s&pool_size=20):
//
//	redis://[user:password@]host[:6379][/db]                      one server
//	redis+cluster://[user:password@]host:port[,host:port…]        a Cluster (seed nodes)
//	redis://[user:password@]host:port?addr=host:port&addr=…       a Cluster too (go-redis's form)
//	redis+sentinel://[user:password@]host[:26379][,host…]/master[/db]   Sentinel
//
// For Sentinel, user and password are the master's (and its replicas');
// Sentinels that require a password of their own take it as
// ?sentinel_username=…&sentinel_password=….
type RedisTarget struct {
	Mode     string
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Sentinel *redis.FailoverOptions
}

// redisSchemes maps each REDIS_URL scheme to its mode and whether it
// speaks TLS.
var redisSchemes = map[string]struct {
	mode string
	tls  bool
}{
	"redis": {RedisSingle, false}, "rediss": {RedisSingle, true},
	"redis+cluster": {RedisCluster, false}, "rediss+cluster": {RedisCluster, true},
	"redis+sentinel": {RedisSentinel, false}, "rediss+sentinel": {RedisSentinel, true},
}

// redisWant is the hint every refused REDIS_URL carries.
const redisWant = "want redis://host:port/db, redis+cluster://host:port,host:port… or redis+sentinel://host:port,host:port…/master (rediss… for TLS)"

// ParseRedisURL parses a REDIS_URL (forms: RedisTarget). Its errors never
// contain the URL's passwords.
func ParseRedisURL(raw string) (RedisTarget, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	s, known := redisSchemes[strings.ToLower(scheme)]
	if !ok || !known {
		return RedisTarget{}, errors.New(redisWant)
	}
	// The authority may list several hosts, which net/url does not parse:
	// split it by hand, then hand go-redis URLs of its own forms.
	auth, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth, tail = rest[:i], rest[i:]
	}
	userinfo := ""
	if at := strings.LastIndex(auth, "@"); at >= 0 {
		userinfo, auth = auth[:at], auth[at+1:]
	}
	if strings.ContainsAny(tail, "#@") {
		// Most likely a password with one of / ? # @ not percent-encoded:
		// say so without echoing any of it.
		return RedisTarget{}, errors.New("a fragment (#…) or an @ after the host: percent-encode / ? # @ in a password (%2F %3F %23 %40)")
	}
	path, query, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return RedisTarget{}, errors.New("the query (after ?) is not valid URL encoding")
	}
	user, err := parseUserinfo(userinfo)
	if err != nil {
		return RedisTarget{}, err
	}
	secrets := passwords(user, q)
	mode := s.mode
	if mode == RedisSingle && q.Has("addr") {
		mode = RedisCluster // go-redis's cluster URL: redis://seed?addr=seed2…
	}
	defPort := redisPort
	if mode == RedisSentinel {
		defPort = sentinelPort
	}
	hosts, err := parseHosts(auth, defPort, mode != RedisSingle)
	if err != nil {
		return RedisTarget{}, err
	}
	for _, a := range q["addr"] {
		h, err := parseHosts(a, defPort, false)
		if err != nil {
			return RedisTarget{}, errors.New("addr=" + a + ": " + err.Error())
		}
		hosts = append(hosts, h...)
	}
	q.Del("addr")

	base := "redis"
	if s.tls {
		base = "rediss"
	}
	t := RedisTarget{Mode: mode}
	switch mode {
	case RedisSingle:
		u := &url.URL{Scheme: base, User: user, Host: hosts[0], Path: path, RawQuery: q.Encode()}
		t.Single, err = redis.ParseURL(u.String())
	case RedisCluster:
		if p := strings.Trim(path, "/"); p != "" && p != "0" {
			return RedisTarget{}, errors.New("a Redis Cluster has only database 0: drop the /" + p)
		}
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		u := &url.URL{Scheme: base, User: user, Host: hosts[0], RawQuery: q.Encode()}
		t.Cluster, err = redis.ParseClusterURL(u.String())
	case RedisSentinel:
		t.Sentinel, err = parseSentinel(base, user, hosts, path, q)
	}
	if err != nil {
		return RedisTarget{}, scrub(err, secrets)
	}
	return t, nil
}

// parseUserinfo decodes user[:password] (percent-encoded).
func parseUserinfo(s string) (*url.Userinfo, error) {
	if s == "" {
		return nil, nil
	}
	name, pass, hasPass := strings.Cut(s, ":")
	name, err1 := url.PathUnescape(name)
	pass, err2 := url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, errors.New("user or password is not valid percent-encoding")
	}
	if hasPass {
		return url.UserPassword(name, pass), nil
	}
	return url.User(name), nil
}

// parseHosts splits a comma-separated host[:port] list (IPv6 in brackets),
// filling in defPort; only one host unless many.
func parseHosts(s, defPort string, many bool) ([]string, error) {
	var out []string
	for h := range strings.SplitSeq(s, ",") {
		if h == "" {
			return nil, errors.New("missing host: " + redisWant)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port (or a bare IPv6 address in brackets).
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defPort
			if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
				return nil, errors.New("host " + strconv.Quote(h) + " is not host[:port] (an IPv6 address goes in brackets: [::1]:6379)")
			}
		}
		if host == "" {
			return nil, errors.New("missing host: " + redisWant)
		}
		if strings.ContainsAny(host, " \t/\\%@") {
			return nil, errors.New("host " + strconv.Quote(host) + " is not a host name or address")
		}
		if !validPort(port, false) {
			return nil, errors.New("port must be a number from 1 to 65535")
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	if len(out) > 1 && !many {
		return nil, errors.New("several hosts name a Cluster or Sentinels: use redis+cluster:// or redis+sentinel://")
	}
	return out, nil
}

// parseSentinel builds Sentinel options: path /master[/db].
func parseSentinel(base string, user *url.Userinfo, hosts []string, path string, q url.Values) (*redis.FailoverOptions, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	master, db := parts[0], ""
	if len(parts) > 1 {
		db = parts[1]
	}
	if master == "" || len(parts) > 2 {
		return nil, errors.New("want the master's name as the path: redis+sentinel://host:26379,host:26379/mymaster[/db]")
	}
	if db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return nil, errors.New("database must be a number, as in redis+sentinel://host:26379/mymaster/0")
		}
		q.Set("db", db)
	}
	master, err := url.PathUnescape(master)
	if err != nil {
		return nil, errors.New("the master's name is not valid percent-encoding")
	}
	q.Set("master_name", master)
	// go-redis reads the URL's user as the Sentinels' and username= /
	// password= as the master's; ours is the other way round (a
	// Sentinel's own password is the rarer case).
	var sentinelUser *url.Userinfo
	if su, sp := q.Get("sentinel_username"), q.Get("sentinel_password"); su != "" || sp != "" {
		sentinelUser = url.UserPassword(su, sp)
	}
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	if user != nil {
		q.Set("username", user.Username())
		if p, ok := user.Password(); ok {
			q.Set("password", p)
		}
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u := &url.URL{Scheme: base, User: sentinelUser, Host: hosts[0], RawQuery: q.Encode()}
	return redis.ParseFailoverURL(u.String())
}

// passwords are the secrets a REDIS_URL carries.
func passwords(user *url.Userinfo, q url.Values) []string {
	var out []string
	if user != nil {
		if p, ok := user.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	for _, k := range secretParams {
		for _, v := range q[k] {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// secretParams are the query parameters that carry a password (go-redis's
// password=, ours sentinel_password=, libpq's password= in DATABASE_URL).
var secretParams = []string{"password", "sentinel_password"}

// scrub is go-redis's parse error without its "redis: " prefix and with
// the URL's passwords cut out, in case one is ever echoed.
func scrub(err error, secrets []string) error {
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return errors.New(msg)
}
