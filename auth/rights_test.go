package auth

import (
	"context"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// rightsOf is v without its token facts (Role, IssuedAt): what a caller may
// do.
func rightsOf(v Viewer) Viewer {
	v.Role, v.IssuedAt = "", time.Time{}
	return v
}

// TestRightsFollowTheStoredUser: the stored user is authoritative — a
// disabled user is refused, disabling revokes the tokens issued until
// then, and a demotion takes the admin rights of earlier role claims.
func TestRightsFollowTheStoredUser(t *testing.T) {
	iat := testNow.Add(-time.Minute) // claimsWith's iat
	exp := testNow.Add(time.Hour)
	before, sameSecond, after := iat.Add(-time.Second), iat.Add(300*time.Millisecond), iat.Add(time.Second)
	tests := []struct {
		name    string
		user    store.User
		claims  map[string]any
		want    Viewer
		wantErr string
	}{
		{name: "disabled", user: store.User{Disabled: true}, wantErr: "user is disabled"},
		{name: "disabled, role admin", user: store.User{Disabled: true, Admin: true}, claims: map[string]any{"role": "admin"}, wantErr: "user is disabled"},
		{name: "enabled again: a token issued before the disabling stays revoked", user: store.User{SessionsRevokedAt: after}, wantErr: "token was revoked"},
		{name: "a token issued in the revocation's second counts as before it", user: store.User{SessionsRevokedAt: sameSecond}, wantErr: "token was revoked"},
		{name: "a token without iat counts as before any revocation", user: store.User{SessionsRevokedAt: before}, claims: map[string]any{"iat": nil}, wantErr: "token was revoked"},
		{name: "a token issued after the revocation", user: store.User{SessionsRevokedAt: before}, want: Viewer{}},
		{name: "stored admin", user: store.User{Admin: true}, want: Viewer{Admin: true}},
		{name: "demoted: stored flag off", user: store.User{AdminRevokedAt: before}, want: Viewer{}},
		{name: "role admin issued after the demotion", user: store.User{AdminRevokedAt: before}, claims: map[string]any{"role": "admin"}, want: Viewer{Admin: true}},
		{name: "role admin issued before the demotion", user: store.User{AdminRevokedAt: after}, claims: map[string]any{"role": "admin"}, want: Viewer{}},
		{name: "role admin issued in the demotion's second", user: store.User{AdminRevokedAt: sameSecond}, claims: map[string]any{"role": "admin"}, want: Viewer{}},
		{name: "stored admin again after a demotion", user: store.User{Admin: true, AdminRevokedAt: after}, claims: map[string]any{"role": "admin"}, want: Viewer{Admin: true}},
		{name: "a demotion leaves the service role", user: store.User{AdminRevokedAt: after}, claims: map[string]any{"role": "service"}, want: Viewer{Service: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.user
			u.ID, u.Name = "alice", "Alice"
			a := newAuth(t, func(o *Options) { o.Users = users{"alice": u} })
			tok := hs256(claimsWith(tt.claims))
			got, err := a.Verify(context.Background(), tok)
			if tt.wantErr != "" {
				assertRefused(t, err, tt.wantErr, tok)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tt.want
			want.UserID, want.ExpiresAt = "alice", exp
			if rightsOf(got) != want {
				t.Fatalf("Viewer = %+v, want %+v", got, want)
			}
		})
	}
}

// TestCurrentRecomputesRights: a Viewer verified once gets the rights the
// stored user grants now, as a connection's operations do.
func TestCurrentRecomputesRights(t *testing.T) {
	us := users{"carol": {ID: "carol", Name: "Carol", Admin: true}}
	a := newAuth(t, func(o *Options) { o.Users = us })
	tok, err := a.Issue("carol", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Verify(context.Background(), tok)
	if err != nil || !v.Admin {
		t.Fatalf("Verify: %+v %v, want admin", v, err)
	}
	steps := []struct {
		name    string
		user    store.User
		admin   bool
		wantErr string
	}{
		{"demoted", store.User{ID: "carol", AdminRevokedAt: testNow}, false, ""},
		{"promoted", store.User{ID: "carol", Admin: true, AdminRevokedAt: testNow}, true, ""},
		{"disabled", store.User{ID: "carol", Disabled: true, SessionsRevokedAt: testNow}, false, "user is disabled"},
		{"enabled, token issued before the disabling", store.User{ID: "carol", SessionsRevokedAt: testNow}, false, "token was revoked"},
	}
	for _, st := range steps {
		us["carol"] = st.user
		got, err := a.Current(context.Background(), v)
		if st.wantErr != "" {
			assertRefused(t, err, st.wantErr, "")
			continue
		}
		if err != nil || got.Admin != st.admin || got.UserID != "carol" || !got.ExpiresAt.Equal(v.ExpiresAt) {
			t.Fatalf("%s: Current = %+v, %v; want admin %v", st.name, got, err, st.admin)
		}
	}
	delete(us, "carol")
	if _, err := a.Current(context.Background(), v); errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("deleted user: %v, want UNAUTHENTICATED", err)
	}
}

func TestFirstValidIssue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 500e6, time.UTC)
	next := time.Date(2026, 1, 1, 0, 0, 11, 0, time.UTC)
	for _, tc := range []struct {
		name string
		u    store.User
		want time.Time
	}{
		{"never revoked", store.User{}, now},
		{"revoked in an earlier second", store.User{SessionsRevokedAt: now.Add(-time.Second)}, now},
		{"disabled within now's second", store.User{SessionsRevokedAt: now.Add(-100 * time.Millisecond)}, next},
		{"demoted within now's second", store.User{AdminRevokedAt: now.Add(-100 * time.Millisecond)}, next},
	} {
		if got := FirstValidIssue(tc.u, now); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSessionInContext(t *testing.T) {
	if _, ok := SessionFrom(context.Background()); ok {
		t.Fatal("a session in an empty context")
	}
	s := NewSession(Viewer{UserID: "a"})
	ctx := WithSession(context.Background(), s)
	got, ok := SessionFrom(ctx)
	if !ok || got != s || got.Viewer().UserID != "a" {
		t.Fatalf("SessionFrom = %v %v", got, ok)
	}
	s.Replace(Viewer{UserID: "a", Role: RoleAdmin})
	if v := got.Viewer(); v.Role != RoleAdmin {
		t.Fatalf("after Replace: %+v", v)
	}
}
