package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

const (
	getSettingQuery    = `SELECT value FROM settings WHERE key = ?`
	insertSettingQuery = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
)

// Setting reads a server setting; ok is false when it was never set.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.rq().QueryRowContext(ctx, getSettingQuery, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrap("get setting", err)
	}
	return v, true, nil
}

// SetSettingIfAbsent stores value unless key is set, and returns what is
// stored afterwards. Insert and read back share the write lock, so
// concurrent callers, in this process or another, all get the first value.
func (s *Store) SetSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	var stored string
	err := s.write(ctx, func(tx queryer) error {
		if _, err := tx.ExecContext(ctx, insertSettingQuery, key, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, getSettingQuery, key).Scan(&stored)
	})
	if err != nil {
		return "", wrap("set setting", err)
	}
	return stored, nil
}
