package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const userCols = `u.id, u.name, u.email, u.admin, u.created_at`

// usersByIDsQuery takes the ids as one JSON array: no limit on their number
// and one statement to prepare, whatever the count.
const usersByIDsQuery = `SELECT ` + userCols + `
	FROM json_each(?) AS j JOIN users u ON u.id = j.value
	ORDER BY j.key`

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
	u, err := getUser(ctx, s.rq(), id)
	return u, wrap("get user", err)
}

func getUser(ctx context.Context, q queryer, id string) (store.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, getUserQuery, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, notFound(kindUser, id)
	}
	return u, err
}

// Users returns the users that exist among ids, in the order of ids; an id
// given more than once yields its user once, at its first place.
func (s *Store) Users(ctx context.Context, ids []string) ([]store.User, error) {
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return []store.User{}, nil
	}
	arr, err := json.Marshal(uniq)
	if err != nil {
		return nil, wrap("get users", err)
	}
	rows, err := s.rq().QueryContext(ctx, usersByIDsQuery, string(arr))
	if err != nil {
		return nil, wrap("get users", err)
	}
	us, err := collect(rows, scanUser)
	return us, wrap("get users", err)
}
