package postgres

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const notificationCols = `n.id, n.user_id, COALESCE(n.sender_id, ''), n.message, n.is_read, n.created_at`

// Two listing statements rather than a parameter that switches the filter
// off: the unread one can then use its partial index.
const (
	insertNotificationQuery = `INSERT INTO notifications
		(id, user_id, sender_id, message, is_read, created_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`
	getNotificationQuery      = `SELECT ` + notificationCols + ` FROM notifications n WHERE n.id = $1`
	markNotificationReadQuery = `UPDATE notifications n SET is_read = true WHERE n.id = $1 RETURNING ` + notificationCols
	notificationsQuery        = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = $1 ORDER BY n.created_at DESC, n.id DESC LIMIT $2`
	unreadNotificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = $1 AND NOT n.is_read ORDER BY n.created_at DESC, n.id DESC LIMIT $2`
)

func scanNotification(sc scanner) (store.Notification, error) {
	var n store.Notification
	if err := sc.Scan(&n.ID, &n.UserID, &n.SenderID, &n.Message, &n.Read, &n.CreatedAt); err != nil {
		return store.Notification{}, err
	}
	n.CreatedAt = utc(n.CreatedAt)
	return n, nil
}

// insertNotification stores n as given; a taken id is BadUserInput.
func insertNotification(ctx context.Context, q querier, n store.Notification) error {
	created, err := changedOne(ctx, q, insertNotificationQuery, n.ID, n.UserID, nullable(n.SenderID), n.Message, n.Read, n.CreatedAt)
	if err != nil {
		return err
	}
	if !created {
		return alreadyExists(kindNotification, n.ID)
	}
	return nil
}

// CreateNotification stores a notification; its recipient and sender (when
// set) must exist.
func (d db) CreateNotification(ctx context.Context, n store.Notification) (store.Notification, error) {
	if n.ID == "" {
		n.ID = store.NewID("ntf")
	}
	n.CreatedAt = stamp(n.CreatedAt)
	err := d.write(ctx, func(q querier) error {
		if err := pin(ctx, q, kindUser, n.UserID); err != nil {
			return err
		}
		if n.SenderID != "" {
			if err := pin(ctx, q, kindUser, n.SenderID); err != nil {
				return err
			}
		}
		return insertNotification(ctx, q, n)
	})
	if err != nil {
		return store.Notification{}, wrap("create notification", err)
	}
	return n, nil
}

// Notification returns the notification with the id.
func (d db) Notification(ctx context.Context, id string) (store.Notification, error) {
	n, err := getByID(ctx, d.q, kindNotification, getNotificationQuery, scanNotification, id)
	return n, wrap("get notification", err)
}

// MarkNotificationRead marks the notification read (again, if it was) and
// returns it, in one statement.
func (d db) MarkNotificationRead(ctx context.Context, id string) (store.Notification, error) {
	n, err := getByID(ctx, d.q, kindNotification, markNotificationReadQuery, scanNotification, id)
	return n, wrap("mark notification read", err)
}

// UserNotifications lists up to limit (at least 1) of the user's
// notifications, newest first; with unreadOnly, only unread ones.
func (d db) UserNotifications(ctx context.Context, userID string, unreadOnly bool, limit int) ([]store.Notification, error) {
	if limit < 1 {
		return nil, errs.E(errs.BadUserInput, "limit must be at least 1, got %d", limit)
	}
	query := notificationsQuery
	if unreadOnly {
		query = unreadNotificationsQuery
	}
	return listUnder(ctx, d, "list notifications", kindUser, userID, scanNotification, query, userID, limit)
}
