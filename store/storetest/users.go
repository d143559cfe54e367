package storetest

import (
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// testUpdateUser: a patch changes exactly its non-nil fields, atomically;
// revocation instants are stored at microseconds and only move forward;
// members listed through teams and projects carry the same fields.
func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	orig := store.User{ID: "alice", Name: "Alice", Email: "alice@example.com", Admin: true, CreatedAt: base}
	_, err := s.CreateUser(ctx, orig)
	noErr(t, err, "CreateUser")

	revoked := time.Date(2025, 1, 2, 3, 4, 5, 678912345, time.FixedZone("X", 3600))
	revokedStored := time.Date(2025, 1, 2, 2, 4, 5, 678912000, time.UTC)
	// Each step patches the user as the previous one left it.
	steps := []struct {
		name  string
		patch store.UserPatch
		want  func(u *store.User)
	}{
		{"empty patch changes nothing", store.UserPatch{}, func(*store.User) {}},
		{"name", store.UserPatch{Name: ptr("Alice L.")}, func(u *store.User) { u.Name = "Alice L." }},
		{"email removed", store.UserPatch{Email: ptr("")}, func(u *store.User) { u.Email = "" }},
		{"demoted, admin claims revoked", store.UserPatch{Admin: ptr(false), AdminRevokedAt: &revoked}, func(u *store.User) {
			u.Admin, u.AdminRevokedAt = false, revokedStored
		}},
		{"disabled, sessions revoked", store.UserPatch{Disabled: ptr(true), SessionsRevokedAt: &revoked}, func(u *store.User) {
			u.Disabled, u.SessionsRevokedAt = true, revokedStored
		}},
		{"an earlier revocation is ignored", store.UserPatch{SessionsRevokedAt: ptr(revoked.Add(-time.Hour)), AdminRevokedAt: ptr(base)}, func(*store.User) {}},
		{"enabled and promoted: revocations stay", store.UserPatch{Disabled: ptr(false), Admin: ptr(true)}, func(u *store.User) {
			u.Disabled, u.Admin = false, true
		}},
		{"a later revocation replaces", store.UserPatch{SessionsRevokedAt: ptr(revoked.Add(time.Second))}, func(u *store.User) {
			u.SessionsRevokedAt = revokedStored.Add(time.Second)
		}},
	}
	want := orig
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.want(&want)
			got, err := s.UpdateUser(ctx, "alice", st.patch)
			noErr(t, err, "UpdateUser")
			same(t, "UpdateUser returned", got, want)
			read, err := s.User(ctx, "alice")
			noErr(t, err, "User")
			same(t, "User read back", read, want)
		})
	}

	t.Run("listed members carry the rights fields", func(t *testing.T) {
		team, err := s.CreateTeam(ctx, store.Team{Name: "T", CreatedBy: "alice"})
		noErr(t, err, "CreateTeam")
		p, err := s.CreateProject(ctx, store.Project{Name: "P", OwnerID: "alice"})
		noErr(t, err, "CreateProject")
		tm, err := s.TeamMembers(ctx, team.ID)
		noErr(t, err, "TeamMembers")
		sameList(t, "TeamMembers", tm, []store.User{want})
		pm, err := s.ProjectMembers(ctx, p.ID)
		noErr(t, err, "ProjectMembers")
		sameList(t, "ProjectMembers", pm, []store.User{want})
	})
	t.Run("created disabled round-trips", func(t *testing.T) {
		in := store.User{ID: "gone", Name: "Gone", Disabled: true, SessionsRevokedAt: revoked, CreatedAt: base}
		_, err := s.CreateUser(ctx, in)
		noErr(t, err, "CreateUser")
		got, err := s.User(ctx, "gone")
		noErr(t, err, "User")
		in.SessionsRevokedAt = revokedStored
		same(t, "User", got, in)
	})
	t.Run("missing user is NotFound", func(t *testing.T) {
		_, err := s.UpdateUser(ctx, "nobody", store.UserPatch{Name: ptr("x")})
		wantNotFound(t, err, "nobody", "UpdateUser")
		_, err = s.User(ctx, "nobody")
		wantCode(t, err, errs.NotFound, "User after a failed UpdateUser")
	})
}
