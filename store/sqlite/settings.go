package sqlite

import "context"

// Both run on the writer only, inside SetSettingIfAbsent's transaction.
const (
	getSettingQuery    = `SELECT value FROM settings WHERE key = ?`
	insertSettingQuery = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
)

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
