package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const userCols = `u.id, u.name, u.email, u.admin, u.created_at, u.disabled, u.sessions_revoked_at, u.admin_revoked_at`

const (
	insertUserQuery = `INSERT INTO users (id, name, email, admin, created_at, disabled, sessions_revoked_at, admin_revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	getUserQuery    = `SELECT ` + userCols + ` FROM users u WHERE u.id = ?`
	updateUserQuery = `UPDATE users SET name = ?, email = ?, admin = ?, disabled = ?,
		sessions_revoked_at = ?, admin_revoked_at = ? WHERE id = ?`
)

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	var created int64
	var sessions, admin sql.NullInt64
	if err := sc.Scan(&u.ID, &u.Name, &u.Email, &u.Admin, &created, &u.Disabled, &sessions, &admin); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = fromMicros(created)
	u.SessionsRevokedAt, u.AdminRevokedAt = fromNullMicros(sessions), fromNullMicros(admin)
	return u, nil
}

// fromNullMicros and nullMicros map "never" (the zero time) to NULL.
func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}

// CreateUser stores a user under the id the caller chose; a taken id is
// errs.BadUserInput.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
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
	err := s.write(ctx, func(tx queryer) error {
		if err := mustBeNew(ctx, tx, kindUser, u.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertUserQuery, u.ID, u.Name, u.Email, u.Admin, micros(u.CreatedAt),
			u.Disabled, nullMicros(u.SessionsRevokedAt), nullMicros(u.AdminRevokedAt))
		return err
	})
	if err != nil {
		return store.User{}, wrap("create user", err)
	}
	return u, nil
}

// User returns the user with the id.
func (s *Store) User(ctx context.Context, id string) (store.User, error) {
	u, err := getByID(ctx, s.rq(), kindUser, getUserQuery, scanUser, id)
	return u, wrap("get user", err)
}

// UpdateUser applies the patch in one transaction. Revocation instants
// only move forward, so two concurrent revocations keep the later one.
func (s *Store) UpdateUser(ctx context.Context, id string, p store.UserPatch) (store.User, error) {
	var u store.User
	err := s.write(ctx, func(tx queryer) error {
		var err error
		if u, err = getByID(ctx, tx, kindUser, getUserQuery, scanUser, id); err != nil {
			return err
		}
		if p.Name != nil {
			u.Name = *p.Name
		}
		if p.Email != nil {
			u.Email = *p.Email
		}
		if p.Admin != nil {
			u.Admin = *p.Admin
		}
		if p.Disabled != nil {
			u.Disabled = *p.Disabled
		}
		u.SessionsRevokedAt = laterRevocation(u.SessionsRevokedAt, p.SessionsRevokedAt)
		u.AdminRevokedAt = laterRevocation(u.AdminRevokedAt, p.AdminRevokedAt)
		_, err = tx.ExecContext(ctx, updateUserQuery, u.Name, u.Email, u.Admin, u.Disabled,
			nullMicros(u.SessionsRevokedAt), nullMicros(u.AdminRevokedAt), id)
		return err
	})
	if err != nil {
		return store.User{}, wrap("update user", err)
	}
	return u, nil
}

// laterRevocation is the stored revocation instant after a patch: the later
// of the two, at the store's precision.
func laterRevocation(cur time.Time, patch *time.Time) time.Time {
	if patch == nil || patch.IsZero() {
		return cur
	}
	if t := stamp(*patch); t.After(cur) {
		return t
	}
	return cur
}
