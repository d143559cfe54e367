package postgres

import (
	"context"

	"github.com/taskpulse/taskpulse/store"
)

// Keyset paging, as store/sqlite pages. Every paged listing has three
// statements:
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
// btree indexes serve as a range. Ids sort as bytes (COLLATE "C" in the
// schema), so the order is SQLite's whatever the database's locale.

// stmt is a statement with its arguments.
type stmt struct {
	query string
	args  []any
}

// listPage reads one page of a listing under a parent (a user or project)
// on one snapshot: NotFound for a missing parent, BadUserInput for a page
// size out of range or an After that is not an item of the listing.
func listPage[T any](ctx context.Context, d db, op string, parent kind, parentID string, p store.Page,
	scan func(scanner) (T, error), first, next, has stmt) ([]T, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	var out []T
	err := d.read(ctx, func(q querier) error {
		if err := mustExist(ctx, q, parent, parentID); err != nil {
			return err
		}
		st := first
		if p.After != "" {
			st = next
		}
		var err error
		if out, err = query(ctx, q, scan, st.query, st.args...); err != nil || len(out) > 0 || p.After == "" {
			return err
		}
		ok, err := queryBool(ctx, q, has.query, has.args...)
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
