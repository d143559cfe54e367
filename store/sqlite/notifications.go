package sqlite

import (
	"context"
	"database/sql"

	"github.com/taskpulse/taskpulse/store"
)

const notificationCols = `n.id, n.user_id, n.sender_id, n.message, n.is_read, n.created_at`

// Two statements rather than a parameter that switches the filter off: the
// unread one can then use its partial index.
const (
	insertNotificationQuery = `INSERT INTO notifications
		(id, user_id, sender_id, message, is_read, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	getNotificationQuery      = `SELECT ` + notificationCols + ` FROM notifications n WHERE n.id = ?`
	markNotificationReadQuery = `UPDATE notifications SET is_read = 1 WHERE id = ?`
)

// The pages of a user's notifications, newest first (see paging.go), read
// backwards from notifications_by_user or, unread only, from its partial
// twin. The key is the After notification's if it is the user's, read or
// not: a client that marks what it has seen read still pages on.
const (
	// Parameters: user, limit.
	notificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = ? ORDER BY n.created_at DESC, n.id DESC LIMIT ?`
	unreadNotificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = ? AND n.is_read = 0 ORDER BY n.created_at DESC, n.id DESC LIMIT ?`
	// Parameters: user, after, user, limit.
	notificationsAfterQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = ?
			AND (n.created_at, n.id) < (SELECT k.created_at, k.id FROM notifications k WHERE k.id = ? AND k.user_id = ?)
		ORDER BY n.created_at DESC, n.id DESC LIMIT ?`
	unreadNotificationsAfterQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = ? AND n.is_read = 0
			AND (n.created_at, n.id) < (SELECT k.created_at, k.id FROM notifications k WHERE k.id = ? AND k.user_id = ?)
		ORDER BY n.created_at DESC, n.id DESC LIMIT ?`
	// Parameters: after, user.
	hasNotificationQuery = `SELECT EXISTS (SELECT 1 FROM notifications WHERE id = ? AND user_id = ?)`
)

func scanNotification(sc scanner) (store.Notification, error) {
	var n store.Notification
	var sender sql.NullString
	var created int64
	if err := sc.Scan(&n.ID, &n.UserID, &sender, &n.Message, &n.Read, &created); err != nil {
		return store.Notification{}, err
	}
	n.SenderID = sender.String
	n.CreatedAt = fromMicros(created)
	return n, nil
}

// CreateNotification stores a notification; its recipient and sender (when
// set) must exist.
func (s *Store) CreateNotification(ctx context.Context, n store.Notification) (store.Notification, error) {
	if n.ID == "" {
		n.ID = store.NewID("ntf")
	}
	n.CreatedAt = stamp(n.CreatedAt)
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindUser, n.UserID); err != nil {
			return err
		}
		if n.SenderID != "" {
			if err := mustExist(ctx, tx, kindUser, n.SenderID); err != nil {
				return err
			}
		}
		if err := mustBeNew(ctx, tx, kindNotification, n.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertNotificationQuery, n.ID, n.UserID, nullable(n.SenderID), n.Message, n.Read, micros(n.CreatedAt))
		return err
	})
	if err != nil {
		return store.Notification{}, wrap("create notification", err)
	}
	return n, nil
}

// Notification returns the notification with the id.
func (s *Store) Notification(ctx context.Context, id string) (store.Notification, error) {
	n, err := getNotification(ctx, s.rq(), id)
	return n, wrap("get notification", err)
}

func getNotification(ctx context.Context, q queryer, id string) (store.Notification, error) {
	return getByID(ctx, q, kindNotification, getNotificationQuery, scanNotification, id)
}

// MarkNotificationRead marks the notification read (again, if it was) and
// returns it.
func (s *Store) MarkNotificationRead(ctx context.Context, id string) (store.Notification, error) {
	var n store.Notification
	err := s.write(ctx, func(tx queryer) error {
		var err error
		if n, err = getNotification(ctx, tx, id); err != nil {
			return err
		}
		if n.Read {
			return nil
		}
		n.Read = true
		_, err = tx.ExecContext(ctx, markNotificationReadQuery, id)
		return err
	})
	if err != nil {
		return store.Notification{}, wrap("mark notification read", err)
	}
	return n, nil
}

// UserNotifications lists one page of the user's notifications, newest
// first; with unreadOnly, only unread ones.
func (s *Store) UserNotifications(ctx context.Context, userID string, unreadOnly bool, p store.Page) ([]store.Notification, error) {
	first, next := notificationsQuery, notificationsAfterQuery
	if unreadOnly {
		first, next = unreadNotificationsQuery, unreadNotificationsAfterQuery
	}
	return listPage(ctx, s, "list notifications", kindUser, userID, p, scanNotification,
		stmt{first, []any{userID, p.Limit}},
		stmt{next, []any{userID, p.After, userID, p.Limit}},
		stmt{hasNotificationQuery, []any{p.After, userID}})
}
