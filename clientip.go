package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIPs finds a request's client address: the TCP peer's, unless the
// peer is one of TRUSTED_PROXIES, in which case the proxies' forwarding
// header names it. It is the one answer used by the per-IP connection cap,
// the abuse blocks, the connection list (Connection.ip) and the audit log.
type clientIPs struct {
	trusted []netip.Prefix
}

// clientIP is r's client address, as a canonical string (IPv4 unmapped,
// no zone): see clientIPs.of.
func (m *Main) clientIP(r *http.Request) string { return m.clientIPs.of(r) }

// of returns r's client address.
//
// The chain of addresses a request came through is the forwarding
// header's list, left (the original client, as claimed) to right (the
// last proxy's peer), then the TCP peer. It is read from the right: each
// address is taken on the word of the one after it, so only while that one
// is trusted. The first untrusted address is the client; anything left of
// it is what the client wrote, and is ignored. An entry that is not an
// address (a name, "unknown", an obfuscated identifier, garbage) stops the
// walk at the trusted hop that reported it, which is then the best known
// address. A chain of trusted addresses only (an internal client behind
// the proxy) gives its leftmost.
//
// X-Forwarded-For is read when present (every line of it, in order), else
// Forwarded (RFC 7239, its for= parameters). Only one of them: a proxy that
// sets one passes the other through from the client untouched, so mixing
// them would let a client append to the chain. Behind a proxy that sets
// only Forwarded, make it drop X-Forwarded-For from clients.
func (c clientIPs) of(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return hostOnly(r.RemoteAddr) // not ip:port (a test's or a Unix socket's): shown as is
	}
	if !c.isTrusted(peer) {
		return peer.String()
	}
	hops := forwardedChain(r.Header)
	addr := peer
	for i := len(hops) - 1; i >= 0 && c.isTrusted(addr); i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		addr = a
	}
	return addr.String()
}

func (c clientIPs) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses a RemoteAddr ("1.2.3.4:5678", "[::1]:5678").
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// hostOnly is RemoteAddr's host part, or all of it.
func hostOnly(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// maxHops bounds the chain read from a header: a client may send a long
// one, and only its right end can matter (each hop read needs a trusted
// proxy after it).
const maxHops = 32

// forwardedChain returns the hops of X-Forwarded-For, or else of
// Forwarded's for= parameters, left to right (at most the last maxHops).
func forwardedChain(h http.Header) []string {
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		return lastHops(xff, func(elem string) string { return elem })
	}
	return lastHops(h.Values("Forwarded"), forwardedFor)
}

// lastHops splits comma-separated header lines into hops, mapping each
// element through hop, keeping the last maxHops.
func lastHops(lines []string, hop func(string) string) []string {
	var out []string
	for _, line := range lines {
		for elem := range strings.SplitSeq(line, ",") {
			out = append(out, hop(strings.TrimSpace(elem)))
			if len(out) > 2*maxHops {
				out = append(out[:0], out[len(out)-maxHops:]...)
			}
		}
	}
	if len(out) > maxHops {
		out = out[len(out)-maxHops:]
	}
	return out
}

// forwardedFor is the for= value of one Forwarded element
// (for=192.0.2.60;proto=http, For="[2001:db8::1]:4711"); "" if it has none.
// Quoted values cannot hold a comma or semicolon that matters here: an
// address has neither, so splitting first is safe.
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// parseHop parses one hop: an address, with or without a port, IPv6
// bracketed or not.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}
