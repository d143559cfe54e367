package sqlite

import (
	"context"
	"database/sql"

	"github.com/taskpulse/taskpulse/errs"
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

const (
	notificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = ? ORDER BY n.created_at DESC, n.id DESC LIMIT ?`
	unreadNotificationsQuery = `SELECT ` + notificationCols + ` FROM notifications n
		WHERE n.user_id = ? AND n.is_read = 0 ORDER BY n.created_at DESC, n.id DESC LIMIT ?`
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

// UserNotifications lists up to limit (at least 1) of the user's
// notifications, newest first; with unreadOnly, only unread ones.
func (s *Store) UserNotifications(ctx context.Context, userID string, unreadOnly bool, limit int) ([]store.Notification, error) {
	if limit < 1 {
		return nil, errs.E(errs.BadUserInput, "limit must be at least 1, got %d", limit)
	}
	query := notificationsQuery
	if unreadOnly {
		query = unreadNotificationsQuery
	}
	return listUnder(ctx, s, "list notifications", kindUser, userID, scanNotification, query, userID, limit)
}
