package transport

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// TestClientIPSeam: the address a connection reports comes from
// Options.ClientIP, the one seam for trusted proxies, on every transport;
// by default it is the peer's address.
func TestClientIPSeam(t *testing.T) {
	t.Run("default is the peer", func(t *testing.T) {
		h := newHarness(t, nil)
		h.connect(t, "alice")
		eventually(t, "registered", func() bool { return h.reg.Len() == 1 })
		if ip := h.reg.ByUser("alice")[0].IP; ip != "127.0.0.1" {
			t.Errorf("IP %q, want 127.0.0.1", ip)
		}
	})
	t.Run("given function, WebSocket and SSE", func(t *testing.T) {
		h := newHarness(t, func(o *Options) {
			o.ClientIP = func(r *http.Request) string { return "203.0.113.7 via " + RemoteIP(r) }
		})
		h.connect(t, "alice")
		if err := h.dial(t, wsclient.DialOptions{Subprotocol: wsclient.ProtocolGraphQLWS}).Init(testCtx(t), map[string]any{"token": "ok:alice"}); err != nil {
			t.Fatal(err)
		}
		openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
		eventually(t, "three registered", func() bool { return h.reg.Len() == 3 })
		var transports []string
		for _, in := range h.reg.ByUser("alice") {
			if in.IP != "203.0.113.7 via 127.0.0.1" {
				t.Errorf("%s: IP %q", in.Transport, in.IP)
			}
			if in.UserAgent == "" || in.ConnectedAt.IsZero() || in.LastActivity.Before(in.ConnectedAt) || time.Since(in.ConnectedAt) > time.Minute {
				t.Errorf("%s: info %+v", in.Transport, in)
			}
			transports = append(transports, in.Transport)
		}
		slices.Sort(transports)
		if want := []string{ProtocolTransportWS, ProtocolGraphQLWS, TransportSSE}; !slices.Equal(transports, want) {
			t.Errorf("transports %q, want %q", transports, want)
		}
	})
}
