package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"github.com/taskpulse/taskpulse/store/migrations"
	"io/fs"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer build than this one: running old code on a new schema could corrupt
// it, so the database is refused rather than used.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this build supports")

// migrate brings the database at db up to the newest migration in fsys. Each
// migration runs in its own write transaction together with the row that
// records it, so a failing migration leaves the schema at the previous
// version, and a concurrent start (another process on the same file) that
// already applied it is noticed under the write lock and skipped. A
// database recording a version above the newest known one is refused with
// ErrSchemaTooNew before anything is applied.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := migrations.Load(fsys, "sqlite")
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	known := len(ms)
	for _, m := range ms {
		if err := applyMigration(ctx, db, m, known); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migrations.Migration, known int) (err error) {
	// The writer pool's transactions begin IMMEDIATE: the version read below
	// is taken under the write lock, so two processes cannot both apply m.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if cur > known {
		return fmt.Errorf("%w: database is at version %d, this build knows versions up to %d", ErrSchemaTooNew, cur, known)
	}
	if cur >= m.Version {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, time.Now().UTC().UnixMicro()); err != nil {
		return fmt.Errorf("sqlite: record migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit migration %s: %w", m.Name, err)
	}
	return nil
}
