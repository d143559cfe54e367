package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"github.com/taskpulse/taskpulse/store/migrations"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer build than this one: running old code on a new schema could corrupt
// it, so the database is refused rather than used.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this build supports")

// migrationLock is the key of the transaction-level advisory lock every
// migration step holds ("tpmigrat" in ASCII). Advisory locks belong to one
// database, so instances starting together on one database take turns,
// and stores on different databases do not wait for each other.
const migrationLock int64 = 0x74706d6967726174

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// migrate brings the database up to the newest migration in fsys. Each
// migration runs in its own transaction together with the row that records
// it, under the advisory lock: a failing migration leaves the schema at the
// previous version (PostgreSQL's DDL is transactional), and an instance
// starting at the same time waits, then finds the migration applied and
// skips it. A database recording a version above the newest known one is
// refused with ErrSchemaTooNew before anything is applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	ms, err := migrations.Load(fsys, "postgres")
	if err != nil {
		return err
	}
	// Even CREATE TABLE IF NOT EXISTS fails when two sessions run it at
	// once (a unique violation in the catalog), so it takes the lock too.
	if err := locked(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, createSchemaMigrations)
		return err
	}); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	known := len(ms)
	for _, m := range ms {
		if err := locked(ctx, pool, func(tx pgx.Tx) error { return applyMigration(ctx, tx, m, known) }); err != nil {
			return err
		}
	}
	return nil
}

// locked runs fn in a transaction that first takes the migration lock; the
// lock ends with the transaction, so a crash cannot leave it held.
func locked(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// An instance starting beside one that migrates waits for it as
		// long as its context allows, not lock_timeout.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("postgres: take the migration lock: %w", err)
		}
		return fn(tx)
	})
}

func applyMigration(ctx context.Context, tx pgx.Tx, m migrations.Migration, known int) error {
	// Read under the lock (and after it, READ COMMITTED: a new snapshot),
	// so a migration another instance committed while this one waited is
	// seen here.
	var cur int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if cur > known {
		return fmt.Errorf("%w: database is at version %d, this build knows versions up to %d", ErrSchemaTooNew, cur, known)
	}
	if cur >= m.Version {
		return nil
	}
	// Without arguments pgx sends the file as one simple query, which may
	// hold several statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
		return fmt.Errorf("postgres: record migration %s: %w", m.Name, err)
	}
	return nil
}
