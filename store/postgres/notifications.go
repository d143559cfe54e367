package postgres

import (
	"context"

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
)

// The pages of a user's notifications, newest first (see paging.go), read
// backwards from notifications_by_user or, unread only, from its partial
// twin. The key is the After notification's if it is the user's, read or
// not: a client that marks what it has seen read still pages on.
const (
	// Parameters: user, limit.
	notificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = $1 ORDER BY n.created_at DESC, n.id DESC LIMIT $2`
	unreadNotificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = $1 AND NOT n.is_read ORDER BY n.created_at DESC, n.id DESC LIMIT $2`
	// Parameters: user, limit, after.
	notificationsAfterQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = $1
			AND (n.created_at, n.id) < (SELECT k.created_at, k.id FROM notifications k WHERE k.id = $3 AND k.user_id = $1)
		ORDER BY n.created_at DESC, n.id DESC LIMIT $2`
	unreadNotificationsAfterQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = $1 AND NOT n.is_read
			AND (n.created_at, n.id) < (SELECT k.created_at, k.id FROM notifications k WHERE k.id = $3 AND k.user_id = $1)
		ORDER BY n.created_at DESC, n.id DESC LIMIT $2`
	// Parameters: after, user.
	hasNotificationQuery = `SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2)`
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

// UserNotifications lists one page of the user's notifications, newest
// first; with unreadOnly, only unread ones.
func (d db) UserNotifications(ctx context.Context, userID string, unreadOnly bool, p store.Page) ([]store.Notification, error) {
	first, next := notificationsQuery, notificationsAfterQuery
	if unreadOnly {
		first, next = unreadNotificationsQuery, unreadNotificationsAfterQuery
	}
	return listPage(ctx, d, "list notifications", kindUser, userID, p, scanNotification,
		stmt{first, []any{userID, p.Limit}},
		stmt{next, []any{userID, p.Limit, p.After}},
		stmt{hasNotificationQuery, []any{p.After, userID}})
}
