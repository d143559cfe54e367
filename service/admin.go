package service

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// CloseDisabled is the close code of a disabled user's connections
// (graphql-transport-ws 4403 Forbidden) and closeDisabledReason its reason.
const (
	CloseDisabled       = 4403
	closeDisabledReason = "Forbidden: user disabled"
	// closeDisconnectedReason is the reason of disconnectUser's 4403.
	closeDisconnectedReason = "Forbidden: disconnected by an administrator"
)

// UserChange is an admin's change of a user; nil fields stay as they are.
type UserChange struct {
	Name     *string
	Email    *string // "" removes it
	Admin    *bool
	Disabled *bool
}

// UpdateUser changes a user: admins only. Rights apply at once everywhere:
//
//   - Disabled true refuses the user everywhere: their tokens (and every
//     token issued until now, even after they are enabled again) are
//     refused by every request and every operation on an open socket,
//     and their open sockets are closed with 4403 (a Disconnect control,
//     applied by every instance in log order).
//   - Admin false takes admin rights at once: the next operation on an
//     open socket is checked against the stored user; admin role claims
//     of tokens issued until now stop counting; subscriptions the admin
//     rights allowed (a project the user is not a member of) end with
//     FORBIDDEN (a Demote control).
//   - Admin true or Disabled false apply from the next operation.
//
// The event published carries no data: only the user id in its control.
func (s *Service) UpdateUser(ctx context.Context, userID string, ch UserChange) (store.User, error) {
	if err := s.RequireAdmin(ctx); err != nil {
		return store.User{}, err
	}
	if err := id("id", userID); err != nil {
		return store.User{}, err
	}
	var patch store.UserPatch
	if ch.Name != nil {
		n, err := text("name", *ch.Name, true, MaxNameLen)
		if err != nil {
			return store.User{}, err
		}
		patch.Name = &n
	}
	if ch.Email != nil {
		e, err := text("email", *ch.Email, false, 254)
		if err != nil {
			return store.User{}, err
		}
		patch.Email = &e
	}
	patch.Admin, patch.Disabled = ch.Admin, ch.Disabled
	if patch == (store.UserPatch{}) {
		return store.User{}, errs.E(errs.BadUserInput, "nothing to update")
	}
	var u store.User
	err := s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		now := store.Now()
		patch := patch // this run's: a retried run revokes at its own now
		var ctl *realtime.Control
		switch {
		case ch.Disabled != nil && *ch.Disabled:
			patch.SessionsRevokedAt = &now
			ctl = &realtime.Control{Op: realtime.Disconnect, UserID: userID, Code: CloseDisabled, Reason: closeDisabledReason}
		case ch.Admin != nil && !*ch.Admin:
			ctl = &realtime.Control{Op: realtime.Demote, UserID: userID}
		}
		if ch.Admin != nil && !*ch.Admin {
			patch.AdminRevokedAt = &now
		}
		var err error
		if u, err = tx.UpdateUser(ctx, userID, patch); err != nil || ctl == nil {
			return nil, err
		}
		return []*realtime.Event{newEvent(UserRightsChanged, now, EventData{}, ctl)}, nil
	})
	return u, err
}

// DisconnectUser closes every connection of userID, on every instance,
// with 4403: admins only. The close is a Disconnect control in the log, so
// each instance applies it in log order, as it does a disabling; the
// user's tokens stay valid (a client may reconnect: disabling is what
// keeps them out). An unknown id is not an error: it has no connections.
func (s *Service) DisconnectUser(ctx context.Context, userID string) error {
	if err := s.RequireAdmin(ctx); err != nil {
		return err
	}
	if err := id("userId", userID); err != nil {
		return err
	}
	return s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		ctl := &realtime.Control{Op: realtime.Disconnect, UserID: userID, Code: CloseDisabled, Reason: closeDisconnectedReason}
		return []*realtime.Event{newEvent(UserDisconnected, store.Now(), EventData{}, ctl)}, nil
	})
}
