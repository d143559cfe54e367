package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Bearer\tabc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"abc.def.ghi", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := BearerToken(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTokenFromInitPayload(t *testing.T) {
	tests := []struct {
		name    string
		payload map[string]any
		want    string
		ok      bool
	}{
		{"token", map[string]any{"token": "jwt1"}, "jwt1", true},
		{"token with bearer prefix", map[string]any{"token": "Bearer jwt1"}, "jwt1", true},
		{"token trimmed", map[string]any{"token": " jwt1 "}, "jwt1", true},
		{"Authorization", map[string]any{"Authorization": "Bearer jwt2"}, "jwt2", true},
		{"authorization", map[string]any{"authorization": "bearer jwt3"}, "jwt3", true},
		{"headers.Authorization", map[string]any{"headers": map[string]any{"Authorization": "Bearer jwt4"}}, "jwt4", true},
		{"headers.authorization", map[string]any{"headers": map[string]any{"authorization": "Bearer jwt5"}}, "jwt5", true},
		{"headers as string map", map[string]any{"headers": map[string]string{"Authorization": "Bearer jwt6"}}, "jwt6", true},
		{"token wins over header", map[string]any{"token": "jwt1", "Authorization": "Bearer jwt2"}, "jwt1", true},
		{"nil payload", nil, "", false},
		{"empty payload", map[string]any{}, "", false},
		{"other keys only", map[string]any{"user": "alice"}, "", false},
		{"token not a string", map[string]any{"token": 42}, "", false},
		{"token null", map[string]any{"token": nil}, "", false},
		{"token empty", map[string]any{"token": ""}, "", false},
		{"token with spaces", map[string]any{"token": "a b"}, "", false},
		{"malformed token does not fall back", map[string]any{"token": 1, "Authorization": "Bearer jwt2"}, "", false},
		{"Authorization not a string", map[string]any{"Authorization": []any{"Bearer jwt"}}, "", false},
		{"Authorization without Bearer", map[string]any{"Authorization": "jwt2"}, "", false},
		{"Authorization Basic", map[string]any{"Authorization": "Basic dXNlcjpw"}, "", false},
		{"headers not a map", map[string]any{"headers": "Authorization: Bearer x"}, "", false},
		{"headers value not a string", map[string]any{"headers": map[string]any{"Authorization": 7}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TokenFromInitPayload(tt.payload)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("TokenFromInitPayload(%v) = %q, %v; want %q, %v", tt.payload, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestTokenFromInitPayloadJSON feeds payloads as a client's JSON decodes.
func TestTokenFromInitPayloadJSON(t *testing.T) {
	for _, raw := range []string{
		`{"token":"jwt"}`,
		`{"Authorization":"Bearer jwt"}`,
		`{"headers":{"authorization":"Bearer jwt"}}`,
	} {
		var p map[string]any
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			t.Fatal(err)
		}
		if got, ok := TokenFromInitPayload(p); !ok || got != "jwt" {
			t.Errorf("%s: got %q, %v; want jwt", raw, got, ok)
		}
	}
}

// whoami answers with the request's viewer, or "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	v, ok := ViewerFrom(r.Context())
	if !ok {
		io.WriteString(w, "anonymous")
		return
	}
	fmt.Fprintf(w, "%s admin=%v", v.UserID, v.Admin)
})

type gqlErrorBody struct {
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func TestMiddleware(t *testing.T) {
	a := newAuth(t, func(o *Options) { o.Now = time.Now })
	good, err := a.Issue("alice", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Issue("bob", time.Hour, RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	past := newAuth(t, func(o *Options) { o.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } })
	expired, err := past.Issue("alice", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(a.Middleware(whoami))
	defer srv.Close()

	tests := []struct {
		name    string
		headers [][2]string
		status  int
		body    string // for 200
		wantWhy string // for 401: part of errors[0].message
		upgrade bool   // a WebSocket upgrade: GET without a body
	}{
		{name: "valid", headers: [][2]string{{"Authorization", "Bearer " + good}}, status: 200, body: "alice admin=false"},
		{name: "lowercase scheme", headers: [][2]string{{"Authorization", "bearer " + admin}}, status: 200, body: "bob admin=true"},
		{name: "no header", status: 200, body: "anonymous"},
		{name: "empty header", headers: [][2]string{{"Authorization", ""}}, status: 200, body: "anonymous"},
		{name: "expired", headers: [][2]string{{"Authorization", "Bearer " + expired}}, status: 401, wantWhy: "token expired"},
		{name: "garbage", headers: [][2]string{{"Authorization", "Bearer not-a-jwt"}}, status: 401, wantWhy: "malformed token"},
		{name: "unknown user", headers: [][2]string{{"Authorization", "Bearer " + mustIssue(t, a, "mallory")}}, status: 401,
			wantWhy: "user does not exist"},
		{name: "basic scheme", headers: [][2]string{{"Authorization", "Basic dXNlcjpwYXNz"}}, status: 401, wantWhy: "Bearer <token>"},
		{name: "bearer without token", headers: [][2]string{{"Authorization", "Bearer"}}, status: 401, wantWhy: "Bearer <token>"},
		{name: "two headers", headers: [][2]string{{"Authorization", "Bearer " + good}, {"Authorization", "Bearer " + admin}},
			status: 401, wantWhy: "more than one"},
		{name: "websocket upgrade with bad token", headers: [][2]string{
			{"Authorization", "Bearer " + expired}, {"Connection", "Upgrade"}, {"Upgrade", "websocket"},
			{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
			{"Sec-WebSocket-Protocol", "graphql-transport-ws"},
		}, upgrade: true, status: 401, wantWhy: "token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, reqBody := http.MethodPost, io.Reader(strings.NewReader(`{"query":"{me{id}}"}`))
			if tt.upgrade {
				method, reqBody = http.MethodGet, nil
			}
			req, err := http.NewRequest(method, srv.URL+"/graphql", reqBody)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.headers {
				req.Header.Add(h[0], h[1])
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				if string(body) != tt.body {
					t.Fatalf("handler saw %q, want %q", body, tt.body)
				}
				return
			}
			assertUnauthorizedResponse(t, resp, body, tt.wantWhy)
		})
	}
}

func mustIssue(t *testing.T, a *Authenticator, user string) string {
	t.Helper()
	tok, err := a.Issue(user, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func assertUnauthorizedResponse(t *testing.T, resp *http.Response, body []byte, why string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if wa := resp.Header.Get("WWW-Authenticate"); wa != `Bearer error="invalid_token"` {
		t.Errorf("WWW-Authenticate = %q", wa)
	}
	var b gqlErrorBody
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("body %s is not JSON: %v", body, err)
	}
	if len(b.Errors) != 1 {
		t.Fatalf("body %s: want exactly one error", body)
	}
	if got := b.Errors[0].Extensions["code"]; got != "UNAUTHENTICATED" {
		t.Errorf("extensions.code = %v, want UNAUTHENTICATED", got)
	}
	if !strings.Contains(b.Errors[0].Message, why) {
		t.Errorf("message = %q, want it to say %q", b.Errors[0].Message, why)
	}
}

func TestMiddlewareStoreFailure(t *testing.T) {
	var logged strings.Builder
	a := newAuth(t, func(o *Options) {
		o.Now = time.Now
		o.Users = failingUsers{errors.New("dial tcp 10.0.0.5:5432: connection refused")}
		o.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	})
	called := false
	h := a.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/graphql", nil)
	req.Header.Set("Authorization", "Bearer "+mustIssue(t, a, "alice"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if called {
		t.Error("handler ran although the viewer could not be checked")
	}
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	var b gqlErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || len(b.Errors) != 1 {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if b.Errors[0].Extensions["code"] != "INTERNAL" || strings.Contains(rec.Body.String(), "10.0.0.5") {
		t.Errorf("body %s: want INTERNAL without internals", rec.Body)
	}
	if !strings.Contains(logged.String(), "connection refused") {
		t.Errorf("the cause was not logged: %q", logged.String())
	}
}

// TestRequired: after Middleware, a request without a viewer is refused
// 401 before the handler reads anything, unless exempt; a viewer passes.
func TestRequired(t *testing.T) {
	a := newAuth(t, func(o *Options) { o.Now = time.Now })
	good := mustIssue(t, a, "alice")
	exempt := func(r *http.Request) bool { return r.Header.Get("Upgrade") == "websocket" }
	var read atomic.Bool
	h := a.Middleware(Required(exempt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read.Store(true)
		whoami(w, r)
	})))
	tests := []struct {
		name    string
		headers [][2]string
		status  int
		body    string
	}{
		{name: "viewer", headers: [][2]string{{"Authorization", "Bearer " + good}}, status: 200, body: "alice admin=false"},
		{name: "no header", status: 401},
		{name: "empty header", headers: [][2]string{{"Authorization", " "}}, status: 401},
		{name: "exempt", headers: [][2]string{{"Upgrade", "websocket"}}, status: 200, body: "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read.Store(false)
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{me{id}}"}`))
			for _, h := range tt.headers {
				req.Header.Add(h[0], h[1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if rec.Body.String() != tt.body {
					t.Fatalf("handler saw %q, want %q", rec.Body, tt.body)
				}
				return
			}
			if read.Load() {
				t.Fatal("the handler ran for an anonymous request")
			}
			if wa := rec.Header().Get("WWW-Authenticate"); wa != `Bearer realm="taskpulse"` {
				t.Errorf("WWW-Authenticate = %q", wa)
			}
			var b gqlErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || len(b.Errors) != 1 || b.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
				t.Fatalf("body %s (%v): want one UNAUTHENTICATED error", rec.Body, err)
			}
		})
	}
}
