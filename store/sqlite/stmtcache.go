package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtCache holds a prepared statement for each of the store's queries on
// one pool. Parsing and planning is most of the cost of a short statement
// in SQLite (about 40% of a CreateTask, measured), and a *sql.Stmt stays
// prepared on every connection it has run on.
//
// Every statement is prepared when the store opens, never later: preparing
// on a pool needs a free connection, and the writer's only connection is
// busy inside the transaction that would ask. Opening thereby also checks
// every query against the schema. A query missing from the list still runs,
// unprepared, and is recorded so that tests catch the omission.
type stmtCache struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt // read-only after newStmtCache

	mu     sync.Mutex
	missed map[string]bool
}

func newStmtCache(ctx context.Context, db *sql.DB, queries []string) (*stmtCache, error) {
	c := &stmtCache{db: db, stmts: make(map[string]*sql.Stmt, len(queries)), missed: make(map[string]bool)}
	for _, q := range queries {
		if _, ok := c.stmts[q]; ok {
			continue
		}
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			_ = c.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", q, err)
		}
		c.stmts[q] = st
	}
	return c, nil
}

// get returns the prepared statement for query, or nil if it has none.
func (c *stmtCache) get(query string) *sql.Stmt {
	if st, ok := c.stmts[query]; ok {
		return st
	}
	c.mu.Lock()
	c.missed[query] = true
	c.mu.Unlock()
	return nil
}

// missedQueries lists the queries that ran without a prepared statement.
func (c *stmtCache) missedQueries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.missed))
	for q := range c.missed {
		out = append(out, q)
	}
	return out
}

func (c *stmtCache) close() error {
	var err error
	for _, st := range c.stmts {
		err = errors.Join(err, st.Close())
	}
	return err
}

// cachedDB runs statements on a pool through its cache.
type cachedDB struct{ c *stmtCache }

func (q cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.c.get(query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.c.db.ExecContext(ctx, query, args...)
}

func (q cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.c.get(query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.c.db.QueryContext(ctx, query, args...)
}

func (q cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.c.get(query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.c.db.QueryRowContext(ctx, query, args...)
}

// cachedTx runs statements in a transaction through the cache of the pool
// the transaction belongs to.
type cachedTx struct {
	tx *sql.Tx
	c  *stmtCache
}

func (q cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.c.get(query); st != nil {
		return q.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return q.tx.ExecContext(ctx, query, args...)
}

func (q cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.c.get(query); st != nil {
		return q.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, query, args...)
}

func (q cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.c.get(query); st != nil {
		return q.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return q.tx.QueryRowContext(ctx, query, args...)
}
