package main

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := clientIPs{trusted: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}}
	none := clientIPs{}
	long := strings.Repeat("10.0.0.9, ", 5000) + "10.0.0.8"

	cases := []struct {
		name   string
		ips    clientIPs
		remote string
		xff    []string
		fwd    []string
		want   string
	}{
		{"no proxy trusted: the peer, headers ignored", none, "203.0.113.5:4000", []string{"198.51.100.7"}, []string{"for=198.51.100.8"}, "203.0.113.5"},
		{"untrusted peer's X-Forwarded-For ignored", trusted, "203.0.113.5:4000", []string{"198.51.100.7"}, nil, "203.0.113.5"},
		{"untrusted peer naming a trusted proxy", trusted, "203.0.113.5:4000", []string{"10.0.0.1"}, nil, "203.0.113.5"},
		{"trusted peer, no header", trusted, "10.0.0.1:4000", nil, nil, "10.0.0.1"},
		{"trusted peer forwards the client", trusted, "10.0.0.1:4000", []string{"198.51.100.7"}, nil, "198.51.100.7"},
		{"what the client wrote left of it is ignored", trusted, "10.0.0.1:4000", []string{"1.1.1.1, 6.6.6.6, 198.51.100.7"}, nil, "198.51.100.7"},
		{"a chain of trusted proxies is walked", trusted, "10.0.0.1:4000", []string{"1.1.1.1, 198.51.100.7, 192.0.2.1, 10.9.9.9"}, nil, "198.51.100.7"},
		{"several header lines are one list", trusted, "10.0.0.1:4000", []string{"1.1.1.1, 198.51.100.7", "10.0.0.2"}, nil, "198.51.100.7"},
		{"only trusted addresses: the leftmost", trusted, "10.0.0.1:4000", []string{"10.0.0.3, 10.0.0.2"}, nil, "10.0.0.3"},
		{"client address with a port", trusted, "10.0.0.1:4000", []string{"198.51.100.7:51234"}, nil, "198.51.100.7"},
		{"IPv6 client, bare", trusted, "10.0.0.1:4000", []string{"2001:db8::7"}, nil, "2001:db8::7"},
		{"IPv6 client, bracketed with a port", trusted, "10.0.0.1:4000", []string{"[2001:db8::7]:443"}, nil, "2001:db8::7"},
		{"IPv6 client, bracketed", trusted, "10.0.0.1:4000", []string{"[2001:db8::7]"}, nil, "2001:db8::7"},
		{"IPv4-mapped addresses compare unmapped", trusted, "[::ffff:10.0.0.1]:4000", []string{"::ffff:198.51.100.7"}, nil, "198.51.100.7"},
		{"IPv6 trusted proxy", trusted, "[fd00::1]:4000", []string{"198.51.100.7"}, nil, "198.51.100.7"},
		{"zone dropped", trusted, "10.0.0.1:4000", []string{"fe80::1%eth0"}, nil, "fe80::1"},
		{"malformed entry: the hop that reported it", trusted, "10.0.0.1:4000", []string{"not-an-address"}, nil, "10.0.0.1"},
		{"malformed in the middle stops the walk", trusted, "10.0.0.1:4000", []string{"198.51.100.7, garbage, 10.0.0.2"}, nil, "10.0.0.2"},
		{"empty header value", trusted, "10.0.0.1:4000", []string{""}, nil, "10.0.0.1"},
		{"empty element", trusted, "10.0.0.1:4000", []string{"198.51.100.7,,"}, nil, "10.0.0.1"},
		{"an untrusted hop ends the walk even if a trusted one is left of it", trusted, "10.0.0.1:4000", []string{"10.0.0.5, 198.51.100.7"}, nil, "198.51.100.7"},
		{"Forwarded when there is no X-Forwarded-For", trusted, "10.0.0.1:4000", nil, []string{"for=198.51.100.7;proto=https;by=10.0.0.1"}, "198.51.100.7"},
		{"Forwarded, quoted IPv6 with a port", trusted, "10.0.0.1:4000", nil, []string{`for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded, case and spaces", trusted, "10.0.0.1:4000", nil, []string{"proto=http; For = 198.51.100.7"}, "198.51.100.7"},
		{"Forwarded chain", trusted, "10.0.0.1:4000", nil, []string{"for=6.6.6.6, for=198.51.100.7", "for=10.0.0.2"}, "198.51.100.7"},
		{"Forwarded for=unknown", trusted, "10.0.0.1:4000", nil, []string{"for=unknown"}, "10.0.0.1"},
		{"Forwarded obfuscated", trusted, "10.0.0.1:4000", nil, []string{"for=_hidden"}, "10.0.0.1"},
		{"Forwarded element without for", trusted, "10.0.0.1:4000", nil, []string{"proto=https"}, "10.0.0.1"},
		{"X-Forwarded-For wins over a client's Forwarded", trusted, "10.0.0.1:4000", []string{"198.51.100.7"}, []string{"for=6.6.6.6"}, "198.51.100.7"},
		{"a huge header: only its right end is read", trusted, "10.0.0.1:4000", []string{"198.51.100.7, " + long}, nil, "10.0.0.9"},
		{"RemoteAddr that is not ip:port", trusted, "@", []string{"198.51.100.7"}, nil, "@"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range c.fwd {
				r.Header.Add("Forwarded", v)
			}
			if got := c.ips.of(r); got != c.want {
				t.Fatalf("client IP %q, want %q", got, c.want)
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	ips := clientIPs{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:4000"
	r.Header.Set("X-Forwarded-For", "198.51.100.7, 10.0.0.2")
	b.ReportAllocs()
	for b.Loop() {
		ips.of(r)
	}
}
