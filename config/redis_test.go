package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// What a REDIS_URL names, in the options go-redis connects with.
func TestParseRedisURL(t *testing.T) {
	type want struct {
		mode      string
		addrs     []string // Single: one; Cluster: seeds; Sentinel: the Sentinels
		user, pwd string   // the data nodes' credentials
		db        int
		tls       bool
		master    string // Sentinel
		sUser     string // Sentinel's own credentials
		sPwd      string
		dial      time.Duration
	}
	tests := []struct {
		url  string
		want want
	}{
		{"redis://127.0.0.1:6379/0", want{mode: RedisSingle, addrs: []string{"127.0.0.1:6379"}}},
		{"redis://cache", want{mode: RedisSingle, addrs: []string{"cache:6379"}}},
		{"REDIS://cache:6380/3", want{mode: RedisSingle, addrs: []string{"cache:6380"}, db: 3}},
		{"redis://[::1]:7000/1", want{mode: RedisSingle, addrs: []string{"[::1]:7000"}, db: 1}},
		{"redis://[::1]", want{mode: RedisSingle, addrs: []string{"[::1]:6379"}}},
		{"redis://app:p%40ss@cache:6379/2?dial_timeout=3s", want{mode: RedisSingle, addrs: []string{"cache:6379"},
			user: "app", pwd: "p@ss", db: 2, dial: 3 * time.Second}},
		{"rediss://:secret@cache.example.com", want{mode: RedisSingle, addrs: []string{"cache.example.com:6379"}, pwd: "secret", tls: true}},

		{"redis+cluster://h1:7000,h2:7001,h3:7002", want{mode: RedisCluster, addrs: []string{"h1:7000", "h2:7001", "h3:7002"}}},
		{"redis+cluster://h1", want{mode: RedisCluster, addrs: []string{"h1:6379"}}},
		{"rediss+cluster://u:pw@h1:7000,[::1]:7001/?dial_timeout=2s", want{mode: RedisCluster,
			addrs: []string{"h1:7000", "[::1]:7001"}, user: "u", pwd: "pw", tls: true, dial: 2 * time.Second}},
		{"redis+cluster://h1:7000?addr=h2:7001", want{mode: RedisCluster, addrs: []string{"h1:7000", "h2:7001"}}},
		// go-redis's own cluster form: addr= on redis:// is a Cluster.
		{"redis://:pw@h1:7000?addr=h2:7001&addr=h3:7002", want{mode: RedisCluster,
			addrs: []string{"h1:7000", "h2:7001", "h3:7002"}, pwd: "pw"}},

		{"redis+sentinel://s1:26379,s2:26380/mymaster", want{mode: RedisSentinel,
			addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster"}},
		{"redis+sentinel://s1,s2/mymaster/4", want{mode: RedisSentinel,
			addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 4}},
		{"rediss+sentinel://app:pw@s1/main?sentinel_password=spw&sentinel_username=sen", want{mode: RedisSentinel,
			addrs: []string{"s1:26379"}, master: "main", user: "app", pwd: "pw", tls: true, sUser: "sen", sPwd: "spw"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			w := tt.want
			if got.Mode != w.mode {
				t.Fatalf("mode %q, want %q", got.Mode, w.mode)
			}
			var g want
			g.mode = got.Mode
			set := 0
			if o := got.Single; o != nil {
				set++
				g.addrs, g.user, g.pwd, g.db, g.tls, g.dial = []string{o.Addr}, o.Username, o.Password, o.DB, o.TLSConfig != nil, o.DialTimeout
			}
			if o := got.Cluster; o != nil {
				set++
				g.addrs, g.user, g.pwd, g.tls, g.dial = o.Addrs, o.Username, o.Password, o.TLSConfig != nil, o.DialTimeout
			}
			if o := got.Sentinel; o != nil {
				set++
				g.addrs, g.user, g.pwd, g.db, g.tls = o.SentinelAddrs, o.Username, o.Password, o.DB, o.TLSConfig != nil
				g.master, g.sUser, g.sPwd = o.MasterName, o.SentinelUsername, o.SentinelPassword
			}
			if set != 1 {
				t.Fatalf("%d of Single, Cluster, Sentinel set, want 1", set)
			}
			if !slices.Equal(g.addrs, w.addrs) || g.user != w.user || g.pwd != w.pwd || g.db != w.db ||
				g.tls != w.tls || g.master != w.master || g.sUser != w.sUser || g.sPwd != w.sPwd || g.dial != w.dial {
				t.Fatalf("got  %+v\nwant %+v", g, w)
			}
		})
	}
}

// A bad REDIS_URL is refused with what is wrong, never with its password.
func TestParseRedisURLRefusals(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "want redis://"},
		{"cache:6379", "want redis://"},
		{"http://cache:6379", "want redis://"},
		{"redis+ring://a,b", "want redis://"},
		{"redis://", "missing host"},
		{"redis://:hunter2@/0", "missing host"},
		{"redis://:hunter2@cache:0", "port must be"},
		{"redis://cache:http", "port must be"},
		{"redis://cache:6379/x", "invalid database number"},
		{"redis://:hunter2@cache/0?dial_timeout=soon", "dial_timeout"},
		{"redis://cache/0?no_such_option=1", "unexpected option: no_such_option"},
		{"redis://a:6379,b:6379", "use redis+cluster:// or redis+sentinel://"},
		{"redis://:hunter2@a:6379,b:6379", "use redis+cluster://"},
		{"redis://::1:6379", "in brackets"},
		{"redis://:hunter2@cache?addr=nope:", "addr=nope:"},
		{"redis+cluster://h1,,h2", "missing host"},
		{"redis+cluster://:hunter2@h1:7000/2", "only database 0"},
		{"redis+cluster://h1?pool_size=lots", "pool_size"},
		{"redis+sentinel://s1:26379", "master's name"},
		{"redis+sentinel://s1/m/x", "database must be a number"},
		{"redis+sentinel://s1/m/0/more", "master's name"},
		{"redis+sentinel://:hunter2@s1/m?sentinel_password=hunter3&bad=1", "unexpected option: bad"},
		{"redis://:hunter2@cache/0#frag", "fragment"},
		{"redis://:hunt?er2@cache:6379", "percent-encode"},
		{"redis://:hunt/er2@cache:6379", "percent-encode"},
		{"redis://:hun%zzter2@cache/0", "percent-encoding"},
		{"redis://cache/0?%zz", "URL encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := ParseRedisURL(tt.url)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter") {
				t.Errorf("error leaks a password: %q", err)
			}
			// Through FromEnv: the variable named, the value redacted.
			_, err = FromEnv(env(map[string]string{"REDIS_URL": tt.url}))
			var ve *VarError
			if tt.url != "" && (!errors.As(err, &ve) || ve.Name != "REDIS_URL") {
				t.Fatalf("FromEnv: %v, want a REDIS_URL VarError", err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter") {
				t.Errorf("FromEnv error leaks a password: %q", err)
			}
		})
	}
}

// Passwords in a URL's user or in its query (password=,
// sentinel_password=) never reach the logged configuration.
func TestRedactQueryPasswords(t *testing.T) {
	for _, u := range []string{
		"redis+sentinel://app:hunter2@s1,s2/m?sentinel_password=hunter3",
		"redis://cache/0?password=hunter2&dial_timeout=1s",
		"postgres://db/tp?sslmode=disable&password=hunter2",
		"postgres://db/tp?PASSWORD=hunter2",
		"redis://:hunter2@cache host?password=hunter3",
	} {
		got := redactURL(u)
		if strings.Contains(got, "hunter") {
			t.Errorf("redactURL(%q) = %q", u, got)
		}
		if !strings.Contains(got, "xxxxx") {
			t.Errorf("redactURL(%q) = %q: nothing marked hidden", u, got)
		}
	}
	if got := redactURL("redis://cache:6379/0?dial_timeout=1s"); got != "redis://cache:6379/0?dial_timeout=1s" {
		t.Errorf("a URL without secrets changed: %q", got)
	}
}
