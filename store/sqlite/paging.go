package sqlite

import (
	"context"

	"github.com/taskpulse/taskpulse/store"
)

// Keyset paging. Every paged listing has three statements:
//
//   - first: the first page, the listing's filter then LIMIT;
//   - next: a following page, whose filter also keeps only the rows
//     strictly after the sort key of the After row. That key is looked up
//     in the same statement, under the listing's own filter, so an id from
//     elsewhere yields no key and so no rows;
//   - has: whether After is an item of the listing. It runs only when next
//     returns nothing, to tell "after the last item" (an empty page) from
//     "not an item of this list" (BadUserInput).
//
// The sort keys are (created_at, id) or id, compared as row values, which
// SQLite and PostgreSQL both support and serve from the listing's index.

// stmt is a statement with its arguments.
type stmt struct {
	query string
	args  []any
}

// listPage reads one page of a listing under a parent (a user or project)
// in one read transaction: NotFound for a missing parent, BadUserInput for
// a page size out of range or an After that is not an item of the listing.
func listPage[T any](ctx context.Context, s *Store, op string, parent kind, parentID string, p store.Page,
	scan func(scanner) (T, error), first, next, has stmt) ([]T, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	var out []T
	err := s.read(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, parent, parentID); err != nil {
			return err
		}
		q := first
		if p.After != "" {
			q = next
		}
		rows, err := tx.QueryContext(ctx, q.query, q.args...)
		if err != nil {
			return err
		}
		if out, err = collect(rows, scan); err != nil || len(out) > 0 || p.After == "" {
			return err
		}
		ok, err := queryBool(ctx, tx, has.query, has.args...)
		if err == nil && !ok {
			err = store.BadAfter(p.After)
		}
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}
