package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// TestWebSocketOriginCheck: browsers from CORS_ORIGIN and the server's own
// pages may open sockets; other origins are refused at the upgrade;
// clients without Origin (services, CLIs) are not browsers and may.
func TestWebSocketOriginCheck(t *testing.T) {
	e := start(t, map[string]string{"CORS_ORIGIN": "http://app.example:3000,https://app.example"})
	wsURL := "ws" + strings.TrimPrefix(e.m.URL(), "http") + "/graphql"
	cases := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://app.example:3000", true},
		{"https://app.example", true},
		{e.m.URL(), true}, // the playground, same origin
		{"http://evil.example", false},
		{"http://app.example:3001", false},
		{"null", false},
	}
	for _, c := range cases {
		t.Run("origin "+c.origin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h := http.Header{}
			if c.origin != "" {
				h.Set("Origin", c.origin)
			}
			cl, err := wsclient.Dial(ctx, wsURL, wsclient.DialOptions{Header: h})
			if c.ok {
				if err != nil {
					t.Fatalf("want upgrade, got %v", err)
				}
				cl.Close()
				return
			}
			var he *wsclient.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
				if cl != nil {
					cl.Close()
				}
				t.Fatalf("want 403 at the upgrade, got %v", err)
			}
		})
	}
}

// TestCORS: an allowed origin gets credentialed CORS headers and an
// answered preflight; any other origin gets none, so browsers refuse.
func TestCORS(t *testing.T) {
	e := start(t, map[string]string{"CORS_ORIGIN": "http://app.example:3000"})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", e.m.URL()+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := preflight("http://app.example:3000")
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "http://app.example:3000" ||
		res.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	if res := preflight("http://evil.example"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused origin got CORS headers: %v", res.Header)
	}
}

// TestRequestLimits: a body over HTTP_MAX_BODY and a query over
// GRAPHQL_COMPLEXITY_LIMIT are refused with a clear error, and the server
// keeps serving.
func TestRequestLimits(t *testing.T) {
	e := start(t, map[string]string{"HTTP_MAX_BODY": "4096", "GRAPHQL_COMPLEXITY_LIMIT": "20"})
	e.users("alice")

	big := `{"query":"{ me { id } }","variables":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token("alice"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"BAD_USER_INPUT"`) {
		t.Fatalf("oversized body: status %d, body %.200s; want 413 BAD_USER_INPUT", res.StatusCode, body)
	}

	// Aliases repeat work without nesting; every field counts, so 15
	// copies of me { id } (complexity 30) exceed 20.
	var q strings.Builder
	q.WriteString("{")
	for i := range 15 {
		fmt.Fprintf(&q, " m%d: me { id }", i)
	}
	q.WriteString(" }")
	e.fails("alice", q.String(), nil, "BAD_USER_INPUT")
	e.do("alice", `{ me { id } }`, nil, nil)
}
