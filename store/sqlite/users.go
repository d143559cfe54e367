package sqlite

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const userCols = `u.id, u.name, u.email, u.admin, u.created_at`

const (
	insertUserQuery = `INSERT INTO users (id, name, email, admin, created_at) VALUES (?, ?, ?, ?, ?)`
	getUserQuery    = `SELECT ` + userCols + ` FROM users u WHERE u.id = ?`
)

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	var created int64
	if err := sc.Scan(&u.ID, &u.Name, &u.Email, &u.Admin, &created); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// CreateUser stores a user under the id the caller chose; a taken id is
// errs.BadUserInput.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if u.ID == "" {
		return store.User{}, errs.E(errs.BadUserInput, "a user needs an id")
	}
	u.CreatedAt = stamp(u.CreatedAt)
	err := s.write(ctx, func(tx queryer) error {
		if err := mustBeNew(ctx, tx, kindUser, u.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertUserQuery, u.ID, u.Name, u.Email, u.Admin, micros(u.CreatedAt))
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
