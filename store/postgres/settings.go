package postgres

import "context"

const (
	insertSettingQuery = `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`
	getSettingQuery    = `SELECT value FROM settings WHERE key = $1`
)

// SetSettingIfAbsent stores value unless key is set, and returns what is
// stored afterwards. The insert waits for a concurrent insert of the same
// key to commit (and then does nothing); the SELECT after it is a new
// statement, on a snapshot that sees whichever insert won. So concurrent
// callers, in this process or another instance, all get the first value.
func (d db) SetSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	var stored string
	err := d.write(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, insertSettingQuery, key, value); err != nil {
			return err
		}
		return q.QueryRow(ctx, getSettingQuery, key).Scan(&stored)
	})
	if err != nil {
		return "", wrap("set setting", err)
	}
	return stored, nil
}
