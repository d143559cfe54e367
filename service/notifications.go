package service

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// SendNotification sends a message to a user the caller shares a team or
// project with (or themself); admins and services may notify anyone.
// Anyone else is NOT_FOUND, exactly as an id that does not exist.
func (s *Service) SendNotification(ctx context.Context, userID, message string) (store.Notification, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Notification{}, err
	}
	if err := id("userId", userID); err != nil {
		return store.Notification{}, err
	}
	msg, err := text("message", message, true, MaxMessageLen)
	if err != nil {
		return store.Notification{}, err
	}
	var n store.Notification
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		if _, err := visibleUser(ctx, tx, v, userID, v.Admin || v.Service); err != nil {
			return nil, err
		}
		var err error
		n, err = tx.CreateNotification(ctx, store.Notification{UserID: userID, SenderID: v.UserID, Message: msg})
		if err != nil {
			return nil, err
		}
		return []*realtime.Event{newEvent(NotificationSent, n.CreatedAt, EventData{Notification: &n}, nil, realtime.RoomUser(userID))}, nil
	})
	return n, err
}

// Notifications lists one page of the caller's notifications, newest
// first. limit is the deprecated name of first: either may be given, not
// both (two page sizes in one request is a client bug worth hearing about).
func (s *Service) Notifications(ctx context.Context, unreadOnly bool, args PageArgs, limit *int) ([]store.Notification, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	field := "first"
	if limit != nil {
		if args.First != nil {
			return nil, errs.E(errs.BadUserInput, "give first or limit (deprecated), not both")
		}
		field, args.First = "limit", limit
	}
	page, err := args.page(field)
	if err != nil {
		return nil, err
	}
	return s.store.UserNotifications(ctx, v.UserID, unreadOnly, page)
}

// MarkNotificationRead marks one of the caller's notifications read.
func (s *Service) MarkNotificationRead(ctx context.Context, notificationID string) (store.Notification, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Notification{}, err
	}
	if err := id("id", notificationID); err != nil {
		return store.Notification{}, err
	}
	var n store.Notification
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if n, err = tx.Notification(ctx, notificationID); err != nil {
			return nil, err
		}
		if n.UserID != v.UserID {
			return nil, errs.E(errs.Forbidden, "notification %q is not yours", notificationID)
		}
		n, err = tx.MarkNotificationRead(ctx, notificationID)
		return nil, err
	})
	if err != nil {
		return store.Notification{}, err
	}
	return n, nil
}

// PublishSystemUpdate broadcasts a message to every connected user: admins
// and services only.
func (s *Service) PublishSystemUpdate(ctx context.Context, message string) error {
	v, err := viewer(ctx)
	if err != nil {
		return err
	}
	if !v.Admin && !v.Service {
		return errs.E(errs.Forbidden, "only admins and services publish system updates")
	}
	msg, err := text("message", message, true, MaxMessageLen)
	if err != nil {
		return err
	}
	return s.update(ctx, func(store.Tx) ([]*realtime.Event, error) {
		return []*realtime.Event{newEvent(SystemUpdate, store.Now(), EventData{Message: msg}, nil, realtime.RoomAll)}, nil
	})
}
