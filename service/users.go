package service

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// validUserID keeps user ids safe in room names, URLs and logs: 1-64 ASCII
// letters, digits or . _ @ -, starting with a letter or digit.
func validUserID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '@' && c != '-')) {
			return false
		}
	}
	return true
}

// CreateUser creates an account (the `taskpulse user add` command and the
// demo seed; there is no public sign-up).
func (s *Service) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if !validUserID(u.ID) {
		return store.User{}, errs.E(errs.BadUserInput, "user id %q must be 1-64 letters, digits or . _ @ - and start with a letter or digit", u.ID)
	}
	name, err := text("name", u.Name, true, MaxNameLen)
	if err != nil {
		return store.User{}, err
	}
	email, err := text("email", u.Email, false, 254)
	if err != nil {
		return store.User{}, err
	}
	u.Name, u.Email = name, email
	return s.store.CreateUser(ctx, u)
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context) (store.User, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.User{}, err
	}
	return s.store.User(ctx, v.UserID)
}

// User returns a user the caller shares a team or project with (or
// themself; admins see everyone). Anyone else is NOT_FOUND, exactly as an
// id that does not exist.
func (s *Service) User(ctx context.Context, userID string) (store.User, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.User{}, err
	}
	if err := id("id", userID); err != nil {
		return store.User{}, err
	}
	return visibleUser(ctx, s.store, v, userID, v.Admin)
}

// RequireAdmin returns FORBIDDEN unless the caller is an admin.
func (s *Service) RequireAdmin(ctx context.Context) error {
	v, err := viewer(ctx)
	if err != nil {
		return err
	}
	if !v.Admin {
		return errs.E(errs.Forbidden, "admin only")
	}
	return nil
}
