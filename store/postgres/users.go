package postgres

import (
	"context"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const userCols = `u.id, u.name, u.email, u.admin, u.created_at, u.disabled, u.sessions_revoked_at, u.admin_revoked_at`

const (
	insertUserQuery = `INSERT INTO users (id, name, email, admin, created_at, disabled, sessions_revoked_at, admin_revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`
	getUserQuery = `SELECT ` + userCols + ` FROM users u WHERE u.id = $1`
	// updateUserQuery changes the non-NULL fields of the patch in one
	// statement. GREATEST ignores NULLs, so a revocation instant only moves
	// forward, and two concurrent revocations keep the later one.
	updateUserQuery = `UPDATE users u SET
			name = COALESCE($2, u.name),
			email = COALESCE($3, u.email),
			admin = COALESCE($4, u.admin),
			disabled = COALESCE($5, u.disabled),
			sessions_revoked_at = GREATEST(u.sessions_revoked_at, $6),
			admin_revoked_at = GREATEST(u.admin_revoked_at, $7)
		WHERE u.id = $1
		RETURNING ` + userCols
)

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	var sessions, admin *time.Time
	if err := sc.Scan(&u.ID, &u.Name, &u.Email, &u.Admin, &u.CreatedAt, &u.Disabled, &sessions, &admin); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = utc(u.CreatedAt)
	u.SessionsRevokedAt, u.AdminRevokedAt = fromNull(sessions), fromNull(admin)
	return u, nil
}

// CreateUser stores a user under the id the caller chose; a taken id is
// errs.BadUserInput.
func (d db) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if u.ID == "" {
		return store.User{}, errs.E(errs.BadUserInput, "a user needs an id")
	}
	u.CreatedAt = stamp(u.CreatedAt)
	if !u.SessionsRevokedAt.IsZero() {
		u.SessionsRevokedAt = stamp(u.SessionsRevokedAt)
	}
	if !u.AdminRevokedAt.IsZero() {
		u.AdminRevokedAt = stamp(u.AdminRevokedAt)
	}
	created, err := changedOne(ctx, d.q, insertUserQuery, u.ID, u.Name, u.Email, u.Admin, u.CreatedAt,
		u.Disabled, nullTime(u.SessionsRevokedAt), nullTime(u.AdminRevokedAt))
	if err != nil {
		return store.User{}, wrap("create user", err)
	}
	if !created {
		return store.User{}, alreadyExists(kindUser, u.ID)
	}
	return u, nil
}

// User returns the user with the id.
func (d db) User(ctx context.Context, id string) (store.User, error) {
	u, err := getByID(ctx, d.q, kindUser, getUserQuery, scanUser, id)
	return u, wrap("get user", err)
}

// UpdateUser applies the patch in one statement and returns the user as
// stored.
func (d db) UpdateUser(ctx context.Context, id string, p store.UserPatch) (store.User, error) {
	u, err := getByID(ctx, d.q, kindUser, updateUserQuery, scanUser, id,
		p.Name, p.Email, p.Admin, p.Disabled, revocation(p.SessionsRevokedAt), revocation(p.AdminRevokedAt))
	return u, wrap("update user", err)
}

// revocation is a patch's revocation instant as stored, or NULL for none.
func revocation(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	s := stamp(*t)
	return &s
}
