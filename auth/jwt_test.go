package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

var (
	testSecret = []byte("correct horse battery staple, 32+")
	testNow    = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

// users is the UserLookup interface's own test double: a fixed set of users.
type users map[string]store.User

func (u users) User(_ context.Context, id string) (store.User, error) {
	if user, ok := u[id]; ok {
		return user, nil
	}
	return store.User{}, errs.E(errs.NotFound, "user %q not found", id)
}

var testUsers = users{
	"alice": {ID: "alice", Name: "Alice"},
	"bob":   {ID: "bob", Name: "Bob"},
	"carol": {ID: "carol", Name: "Carol", Admin: true},
}

// failingUsers is a UserLookup whose database is down.
type failingUsers struct{ err error }

func (f failingUsers) User(context.Context, string) (store.User, error) {
	return store.User{}, f.err
}

func newAuth(t *testing.T, mod func(*Options)) *Authenticator {
	t.Helper()
	opts := Options{Secret: testSecret, Users: testUsers, Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&opts)
	}
	a, err := NewAuthenticator(opts)
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	return a
}

func b64(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// craft builds a token by hand so the tests control every byte: the header,
// the claims and how (or whether) it is signed. mac nil = no signature.
func craft(header, claims map[string]any, mac func() hash.Hash, key []byte) string {
	signing := b64(header) + "." + b64(claims)
	if mac == nil {
		return signing + "."
	}
	h := hmac.New(mac, key)
	h.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func hs256(claims map[string]any) string {
	return craft(map[string]any{"alg": "HS256", "typ": "JWT"}, claims, sha256.New, testSecret)
}

func at(d time.Duration) int64 { return testNow.Add(d).Unix() }

// claims returns valid claims for alice, changed by kv (a nil value deletes).
func claimsWith(kv map[string]any) map[string]any {
	c := map[string]any{"sub": "alice", "iat": at(-time.Minute), "exp": at(time.Hour)}
	for k, v := range kv {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestVerify(t *testing.T) {
	valid := hs256(claimsWith(nil))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(claimsWith(map[string]any{"sub": "bob"})) + "." + parts[2]

	tests := []struct {
		name    string
		token   string
		want    Viewer // when wantErr is ""
		wantErr string // part of the refusal message
	}{
		{name: "valid", token: valid, want: Viewer{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)}},
		{name: "expired", token: hs256(claimsWith(map[string]any{"exp": at(-time.Minute)})), wantErr: "token expired"},
		{name: "expired within leeway", token: hs256(claimsWith(map[string]any{"exp": at(-4 * time.Second)})),
			want: Viewer{UserID: "alice", ExpiresAt: testNow.Add(-4 * time.Second)}},
		{name: "expired just beyond leeway", token: hs256(claimsWith(map[string]any{"exp": at(-6 * time.Second)})), wantErr: "token expired"},
		{name: "nbf beyond leeway", token: hs256(claimsWith(map[string]any{"nbf": at(10 * time.Second)})), wantErr: "not valid yet"},
		{name: "nbf within leeway", token: hs256(claimsWith(map[string]any{"nbf": at(4 * time.Second)})),
			want: Viewer{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)}},
		{name: "iat beyond leeway", token: hs256(claimsWith(map[string]any{"iat": at(10 * time.Second)})), wantErr: "issued in the future"},
		{name: "iat within leeway", token: hs256(claimsWith(map[string]any{"iat": at(4 * time.Second)})),
			want: Viewer{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)}},
		{name: "no iat", token: hs256(claimsWith(map[string]any{"iat": nil})),
			want: Viewer{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)}},
		{name: "wrong key", token: craft(map[string]any{"alg": "HS256"}, claimsWith(nil), sha256.New, []byte("another key entirely")),
			wantErr: "invalid token signature"},
		{name: "alg none", token: craft(map[string]any{"alg": "none", "typ": "JWT"}, claimsWith(nil), nil, nil),
			wantErr: "algorithm not allowed"},
		{name: "alg None with HMAC signature", token: craft(map[string]any{"alg": "None"}, claimsWith(nil), sha256.New, testSecret),
			wantErr: "algorithm not allowed"},
		{name: "alg HS512 same secret", token: craft(map[string]any{"alg": "HS512"}, claimsWith(nil), sha512.New, testSecret),
			wantErr: "algorithm not allowed"},
		{name: "alg HS384 same secret", token: craft(map[string]any{"alg": "HS384"}, claimsWith(nil), sha512.New384, testSecret),
			wantErr: "algorithm not allowed"},
		{name: "alg RS256 with secret as key", token: craft(map[string]any{"alg": "RS256"}, claimsWith(nil), sha256.New, testSecret),
			wantErr: "algorithm not allowed"},
		{name: "alg missing", token: craft(map[string]any{"typ": "JWT"}, claimsWith(nil), sha256.New, testSecret),
			wantErr: "algorithm not allowed"},
		{name: "tampered payload", token: tampered, wantErr: "invalid token signature"},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", wantErr: "invalid token signature"},
		{name: "unknown user", token: hs256(claimsWith(map[string]any{"sub": "mallory"})), wantErr: "user does not exist"},
		{name: "missing sub", token: hs256(claimsWith(map[string]any{"sub": nil})), wantErr: "no sub claim"},
		{name: "empty sub", token: hs256(claimsWith(map[string]any{"sub": ""})), wantErr: "no sub claim"},
		{name: "sub not a string", token: hs256(claimsWith(map[string]any{"sub": 42})), wantErr: "malformed token"},
		{name: "missing exp", token: hs256(claimsWith(map[string]any{"exp": nil})), wantErr: "no exp claim"},
		{name: "exp not a number", token: hs256(claimsWith(map[string]any{"exp": "tomorrow"})), wantErr: "malformed token"},
		{name: "role admin", token: hs256(claimsWith(map[string]any{"role": "admin"})),
			want: Viewer{UserID: "alice", Admin: true, ExpiresAt: testNow.Add(time.Hour)}},
		{name: "role service", token: hs256(claimsWith(map[string]any{"role": "service"})),
			want: Viewer{UserID: "alice", Service: true, ExpiresAt: testNow.Add(time.Hour)}},
		{name: "stored admin without role", token: hs256(claimsWith(map[string]any{"sub": "carol"})),
			want: Viewer{UserID: "carol", Admin: true, ExpiresAt: testNow.Add(time.Hour)}},
		{name: "bad role", token: hs256(claimsWith(map[string]any{"role": "root"})), wantErr: "role not recognised"},
		{name: "role case differs", token: hs256(claimsWith(map[string]any{"role": "Admin"})), wantErr: "role not recognised"},
		{name: "empty role", token: hs256(claimsWith(map[string]any{"role": ""})), wantErr: "role not recognised"},
		{name: "role not a string", token: hs256(claimsWith(map[string]any{"role": true})), wantErr: "malformed token"},
		{name: "iss and aud ignored when not configured", token: hs256(claimsWith(map[string]any{"iss": "x", "aud": "y"})),
			want: Viewer{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)}},
		{name: "oversized", token: strings.Repeat("a", MaxTokenLen+1), wantErr: "token too long"},
		{name: "oversized but validly signed", token: hs256(claimsWith(map[string]any{"pad": strings.Repeat("x", MaxTokenLen)})),
			wantErr: "token too long"},
		{name: "empty", token: "", wantErr: "missing token"},
		{name: "not a jwt", token: "hello", wantErr: "malformed token"},
		{name: "bad base64", token: "a.b.c", wantErr: "malformed token"},
		{name: "padded base64 refused", token: strings.Replace(valid, ".", "=.", 1), wantErr: "malformed token"},
	}
	a := newAuth(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Verify(context.Background(), tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify refused a good token: %v", err)
				}
				if rightsOf(got) != tt.want {
					t.Fatalf("Viewer = %+v, want %+v", got, tt.want)
				}
				return
			}
			assertRefused(t, err, tt.wantErr, tt.token)
			if got != (Viewer{}) {
				t.Errorf("refused token still produced a viewer: %+v", got)
			}
		})
	}
}

// assertRefused checks err is an Unauthenticated *errs.Error saying why,
// without echoing the token.
func assertRefused(t *testing.T, err error, why, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("token accepted, want refusal %q", why)
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Code != errs.Unauthenticated {
		t.Fatalf("error = %#v, want an Unauthenticated *errs.Error", err)
	}
	if !strings.Contains(e.Message, why) {
		t.Errorf("message = %q, want it to say %q", e.Message, why)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(e.Message, part) {
			t.Errorf("message %q echoes the token", e.Message)
		}
	}
}

func TestVerifyIssuerAudience(t *testing.T) {
	a := newAuth(t, func(o *Options) { o.Issuer, o.Audience = "https://id.example.com", "taskpulse" })
	good := map[string]any{"iss": "https://id.example.com", "aud": "taskpulse"}
	with := func(kv map[string]any) string {
		c := claimsWith(good)
		for k, v := range kv {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return hs256(c)
	}
	tests := []struct {
		name, token, wantErr string
	}{
		{"matching", with(nil), ""},
		{"aud list containing ours", with(map[string]any{"aud": []string{"other", "taskpulse"}}), ""},
		{"wrong iss", with(map[string]any{"iss": "https://evil.example.com"}), "issuer not accepted"},
		{"missing iss", with(map[string]any{"iss": nil}), "no iss claim"},
		{"wrong aud", with(map[string]any{"aud": "billing"}), "audience not accepted"},
		{"wrong aud list", with(map[string]any{"aud": []string{"billing", "admin"}}), "audience not accepted"},
		{"missing aud", with(map[string]any{"aud": nil}), "no aud claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := a.Verify(context.Background(), tt.token)
			if tt.wantErr == "" {
				if err != nil || v.UserID != "alice" {
					t.Fatalf("Verify = %+v, %v; want alice", v, err)
				}
				return
			}
			assertRefused(t, err, tt.wantErr, tt.token)
		})
	}
}

func TestVerifyStoreFailureIsInternal(t *testing.T) {
	down := errors.New("database is down")
	for _, cause := range []error{down, errs.E(errs.BadUserInput, "odd adapter error"), context.Canceled} {
		a := newAuth(t, func(o *Options) { o.Users = failingUsers{cause} })
		_, err := a.Verify(context.Background(), hs256(claimsWith(nil)))
		if err == nil {
			t.Fatalf("cause %v: token accepted without a user lookup", cause)
		}
		if code := errs.CodeOf(err); code != errs.Internal {
			t.Errorf("cause %v: code = %s, want INTERNAL", cause, code)
		}
	}
	a := newAuth(t, func(o *Options) { o.Users = failingUsers{context.Canceled} })
	if _, err := a.Verify(context.Background(), hs256(claimsWith(nil))); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not keep its cause", err)
	}
}

func TestLeewayIsCapped(t *testing.T) {
	a := newAuth(t, func(o *Options) { o.Leeway = time.Minute })
	_, err := a.Verify(context.Background(), hs256(claimsWith(map[string]any{"exp": at(-6 * time.Second)})))
	assertRefused(t, err, "token expired", "")

	strict := newAuth(t, func(o *Options) { o.Leeway = time.Second })
	_, err = strict.Verify(context.Background(), hs256(claimsWith(map[string]any{"exp": at(-2 * time.Second)})))
	assertRefused(t, err, "token expired", "")
}

func TestNewAuthenticatorRefuses(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"empty secret", Options{Users: testUsers}},
		{"no users", Options{Secret: testSecret}},
		{"negative leeway", Options{Secret: testSecret, Users: testUsers, Leeway: -time.Second}},
	}
	for _, tt := range tests {
		if a, err := NewAuthenticator(tt.opts); err == nil {
			t.Errorf("%s: NewAuthenticator accepted: %+v", tt.name, a)
		}
	}
}

func TestIssueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		opts func(*Options)
		role string
		want Viewer
	}{
		{"plain", nil, "", Viewer{UserID: "bob", ExpiresAt: testNow.Add(2 * time.Hour)}},
		{"admin", nil, RoleAdmin, Viewer{UserID: "bob", Admin: true, ExpiresAt: testNow.Add(2 * time.Hour)}},
		{"service", nil, RoleService, Viewer{UserID: "bob", Service: true, ExpiresAt: testNow.Add(2 * time.Hour)}},
		{"iss and aud", func(o *Options) { o.Issuer, o.Audience = "tp", "api" }, "",
			Viewer{UserID: "bob", ExpiresAt: testNow.Add(2 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, tt.opts)
			tok, err := a.Issue("bob", 2*time.Hour, tt.role)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			got, err := a.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify(Issue(...)): %v", err)
			}
			if rightsOf(got) != tt.want {
				t.Fatalf("Viewer = %+v, want %+v", got, tt.want)
			}
			if got.Role != tt.role || !got.IssuedAt.Equal(testNow) {
				t.Fatalf("token facts: role %q iat %v, want %q %v", got.Role, got.IssuedAt, tt.role, testNow)
			}
		})
	}
}

func TestIssuedTokenShape(t *testing.T) {
	a := newAuth(t, func(o *Options) { o.Issuer, o.Audience = "tp", "api" })
	tok, err := a.Issue("alice", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	var header, body map[string]any
	for i, dst := range []*map[string]any{&header, &body} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", header["alg"])
	}
	want := map[string]any{
		"sub": "alice", "iss": "tp", "aud": []any{"api"},
		"iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix()),
	}
	if len(body) != len(want) {
		t.Errorf("claims = %v, want exactly %v", body, want)
	}
	for k, v := range want {
		got, _ := json.Marshal(body[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("claim %s = %s, want %s", k, got, exp)
		}
	}

	// A token from a server with another issuer is not ours.
	other := newAuth(t, func(o *Options) { o.Issuer, o.Audience = "someone-else", "api" })
	foreign, err := other.Issue("alice", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Verify(context.Background(), foreign)
	assertRefused(t, err, "issuer not accepted", foreign)
}

func TestIssueRefuses(t *testing.T) {
	a := newAuth(t, nil)
	tests := []struct {
		name, user, role string
		ttl              time.Duration
	}{
		{"empty user", "", "", time.Hour},
		{"zero ttl", "alice", "", 0},
		{"negative ttl", "alice", "", -time.Minute},
		{"unknown role", "alice", "superuser", time.Hour},
	}
	for _, tt := range tests {
		if tok, err := a.Issue(tt.user, tt.ttl, tt.role); err == nil || errs.CodeOf(err) != errs.BadUserInput {
			t.Errorf("%s: Issue = %q, %v; want a BAD_USER_INPUT error", tt.name, tok, err)
		}
	}
}

func TestViewerContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := ViewerFrom(ctx); ok {
		t.Fatal("empty context has a viewer")
	}
	_, err := Require(ctx)
	var e *errs.Error
	if !errors.As(err, &e) || e.Code != errs.Unauthenticated || e.Message != "authentication required" {
		t.Fatalf("Require(anonymous) = %v, want UNAUTHENTICATED: authentication required", err)
	}
	v := Viewer{UserID: "alice", Admin: true, ExpiresAt: testNow}
	ctx = WithViewer(ctx, v)
	if got, ok := ViewerFrom(ctx); !ok || got != v {
		t.Fatalf("ViewerFrom = %+v, %v; want %+v", got, ok, v)
	}
	if got, err := Require(ctx); err != nil || got != v {
		t.Fatalf("Require = %+v, %v; want %+v", got, err, v)
	}
	// Another package's key holding a Viewer is not the viewer.
	type lookalike struct{}
	if _, ok := ViewerFrom(context.WithValue(context.Background(), lookalike{}, v)); ok {
		t.Fatal("a foreign context key yielded a viewer")
	}
}
