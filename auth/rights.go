package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// Current returns v's rights as the stored user grants them now: v's token
// (its subject, role and iat) is checked against the user's current
// record. The stored record is authoritative:
//
//   - a disabled user, or a deleted one, is refused (UNAUTHENTICATED);
//   - a token issued at or before the user's SessionsRevokedAt (set when
//     the user was disabled) is refused, even once the user is enabled
//     again: disabling revokes every token issued until then;
//   - Admin is the stored flag, or the token's role "admin" claim if the
//     token was issued after the user's AdminRevokedAt (set on every
//     demotion): a demotion also takes the admin rights of role claims
//     issued until then, while a role claim minted afterwards (by whoever
//     holds the signing key) still grants them.
//
// Verify calls it for every token; a connection calls it for every
// operation (its token was verified once, the user may have changed since),
// which costs one read of the user, as an HTTP request does.
func (a *Authenticator) Current(ctx context.Context, v Viewer) (Viewer, error) {
	u, err := a.users.User(ctx, v.UserID)
	switch {
	case errs.Is(err, errs.NotFound):
		return Viewer{}, unauthenticated("token user does not exist")
	case err != nil:
		// Not the client's fault: keep the cause for the log and let the
		// code stay Internal (a client-facing code in the cause is dropped).
		if errs.CodeOf(err) == errs.Internal {
			return Viewer{}, fmt.Errorf("auth: look up user %q: %w", v.UserID, err)
		}
		return Viewer{}, fmt.Errorf("auth: look up user %q: %v", v.UserID, err)
	}
	return grant(v, u)
}

// grant applies Current's rules to v and the stored user u.
func grant(v Viewer, u store.User) (Viewer, error) {
	switch {
	case u.Disabled:
		return Viewer{}, unauthenticated("user is disabled")
	case revokedBy(v.IssuedAt, u.SessionsRevokedAt):
		return Viewer{}, unauthenticated("token was revoked: issued before the user was disabled")
	}
	v.Admin = u.Admin || v.Role == RoleAdmin && !revokedBy(v.IssuedAt, u.AdminRevokedAt)
	v.Service = v.Role == RoleService
	return v, nil
}

// revokedBy reports whether a token issued at iat (zero: unknown) predates
// a revocation at revokedAt (zero: none). iat has whole seconds, so a
// token issued within the revocation's second may predate it: it counts
// as revoked.
func revokedBy(iat, revokedAt time.Time) bool {
	if revokedAt.IsZero() {
		return false
	}
	return iat.IsZero() || !iat.After(revokedAt.Truncate(time.Second))
}

// FirstValidIssue is the earliest instant at which a token issued for u is
// not revoked at birth: now, or the second after u's last revocation when
// that falls within now's second. The CLI waits for it before issuing.
func FirstValidIssue(u store.User, now time.Time) time.Time {
	last := u.SessionsRevokedAt
	if u.AdminRevokedAt.After(last) {
		last = u.AdminRevokedAt
	}
	if next := last.Truncate(time.Second).Add(time.Second); now.Before(next) {
		return next
	}
	return now
}
