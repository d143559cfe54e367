package storetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// The contract of keyset paging (store.Page), run once per paged listing
// over a fixture of pagedItems items. Items are numbered; the listing's
// order is their numbers' order (descending for newest-first listings),
// and numbers that share a sort key (created_at) are told apart by id, so
// ties are everywhere.

// pagedItems is the fixture's size: more than a full page of
// store.MaxPageLimit, so the 200/201 boundaries bite.
const pagedItems = store.MaxPageLimit + 5

// paged is one paged listing over its fixture.
type paged struct {
	// list returns the ids of one page.
	list func(ctx context.Context, p store.Page) ([]string, error)
	// unpaged, if not nil, is the listing's unpaged variant for the
	// server's own use, which must return the whole listing.
	unpaged func(ctx context.Context) ([]string, error)
	// id is the id of item n.
	id func(n int) string
	// add puts item n in the listing, with the sort key its number gives.
	add func(t *testing.T, n int)
	// drop takes item n out of the listing (deletes it, or ends the
	// caller's membership); nil when the listing has no way to lose items.
	drop func(t *testing.T, n int)
	// keepsDropped: an After that was dropped still pages on (a read
	// notification in the unread listing), instead of being BadUserInput.
	keepsDropped bool
	// desc: the listing is newest first, so numbers descend.
	desc bool
	// foreign is an existing id of the listing's kind that the listing
	// does not hold for this caller (another user's, another project's).
	foreign string
	// orphan lists under a parent (user, project) that does not exist,
	// which is missing.
	orphan  func(ctx context.Context, p store.Page) error
	missing string
}

// pagedCase names a listing and builds its fixture (users and parents; the
// items come from add).
type pagedCase struct {
	name  string
	setup func(t *testing.T, s store.Store) paged
}

// pagingTests run each paged listing's contract on a fresh store.
func pagingTests() []struct {
	name string
	fn   func(t *testing.T, s store.Store)
} {
	var tests []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}
	for _, c := range pagedCases() {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, s store.Store)
		}{"Paging" + c.name, func(t *testing.T, s store.Store) { testPaging(t, c.setup(t, s)) }})
	}
	return tests
}

// whole adapts a paged listing to one page of store.MaxPageLimit: the
// whole listing for the small fixtures of the rest of the suite.
func whole[T any](list func(ctx context.Context, key string, p store.Page) ([]T, error)) func(ctx context.Context, key string) ([]T, error) {
	return func(ctx context.Context, key string) ([]T, error) { return list(ctx, key, wholePage()) }
}

func wholePage() store.Page { return store.Page{Limit: store.MaxPageLimit} }

func testPaging(t *testing.T, pg paged) {
	ctx := t.Context()
	// Created out of order (evens up, then odds down), so that insertion
	// order is not the listing's.
	var nums []int
	for i := 0; i < pagedItems; i += 2 {
		nums = append(nums, i*10)
	}
	for i := pagedItems - 1; i >= 0; i-- {
		if i%2 == 1 {
			nums = append(nums, i*10)
		}
	}
	for _, n := range nums {
		pg.add(t, n)
	}
	slices.Sort(nums)
	if pg.desc {
		slices.Reverse(nums)
	}
	want := ids(nums, pg.id)
	page := func(after string, limit int) ([]string, error) {
		return pg.list(ctx, store.Page{After: after, Limit: limit})
	}

	t.Run("pages concatenate to the whole list", func(t *testing.T) {
		for _, limit := range []int{1, 7, store.MaxPageLimit} {
			sameList(t, fmt.Sprint("walk by ", limit), walk(t, pg, limit, nil), want)
		}
	})

	if pg.unpaged != nil {
		t.Run("the unpaged variant lists everything", func(t *testing.T) {
			got, err := pg.unpaged(ctx)
			noErr(t, err, "unpaged listing")
			sameList(t, "unpaged listing", got, want)
		})
	}

	t.Run("page size boundaries", func(t *testing.T) {
		tests := []struct {
			after string
			limit int
			want  []string
		}{
			{"", 1, want[:1]},
			{"", store.MaxPageLimit, want[:store.MaxPageLimit]},
			{want[0], store.MaxPageLimit, want[1 : store.MaxPageLimit+1]},
			{want[len(want)-2], 5, want[len(want)-1:]},
			{want[len(want)-1], 5, []string{}}, // after the last item: an empty page
		}
		for _, tc := range tests {
			got, err := page(tc.after, tc.limit)
			noErr(t, err, fmt.Sprintf("page after %q limit %d", tc.after, tc.limit))
			sameList(t, fmt.Sprintf("page after %q limit %d", tc.after, tc.limit), got, tc.want)
		}
		for _, limit := range []int{0, -1, store.MaxPageLimit + 1} {
			_, err := page("", limit)
			wantCode(t, err, errs.BadUserInput, fmt.Sprint("limit ", limit))
			_, err = page(want[0], limit)
			wantCode(t, err, errs.BadUserInput, fmt.Sprint("limit ", limit, " with after"))
		}
	})

	t.Run("after not in this list: one answer, whether it exists or not", func(t *testing.T) {
		unknown := pg.id(99_999_990) // the listing's kind of id, never created
		_, errUnknown := page(unknown, 5)
		wantCode(t, errUnknown, errs.BadUserInput, "after an unknown id")
		_, errForeign := page(pg.foreign, 5)
		wantCode(t, errForeign, errs.BadUserInput, "after another list's id")
		if errUnknown != nil && errForeign != nil {
			a := strings.ReplaceAll(errUnknown.Error(), unknown, "ID")
			b := strings.ReplaceAll(errForeign.Error(), pg.foreign, "ID")
			same(t, "the two errors, ids aside", a, b)
		}
	})

	t.Run("missing parent", func(t *testing.T) {
		wantNotFound(t, pg.orphan(ctx, store.Page{Limit: 5}), pg.missing, "listing under a missing parent")
	})

	// Last: it changes the fixture.
	t.Run("inserts and deletes between pages: no duplicate, no gap", func(t *testing.T) {
		testPagingAmidChanges(t, pg, nums)
	})

	if pg.drop != nil {
		t.Run("after an item that left the list", func(t *testing.T) {
			rest := walk(t, pg, store.MaxPageLimit, nil)
			if len(rest) < 3 {
				t.Fatalf("%d items left", len(rest))
			}
			gone := rest[1]
			pg.drop(t, numOf(t, pg, gone))
			got, err := page(gone, 5)
			if pg.keepsDropped {
				noErr(t, err, "page after a dropped item")
				sameList(t, "page after a dropped item", got, rest[2:min(7, len(rest))])
				return
			}
			wantCode(t, err, errs.BadUserInput, "page after a dropped item")
		})
	}
}

// walk reads the whole listing page by page as a client does (first page,
// then after = the last id of the previous page) until an empty page, and
// checks every page's size: a short page is the last one, unless between
// (if not nil, run after each page with the last id read) adds items.
func walk(t *testing.T, pg paged, limit int, between func(last string)) []string {
	t.Helper()
	out := make([]string, 0)
	after, short := "", false
	for range 2*pagedItems + 10 {
		got, err := pg.list(t.Context(), store.Page{After: after, Limit: limit})
		noErr(t, err, fmt.Sprintf("page after %q limit %d", after, limit))
		if len(got) == 0 {
			return out
		}
		if short && between == nil {
			t.Fatalf("limit %d: a short page was followed by more items: %v", limit, got)
		}
		if len(got) > limit {
			t.Fatalf("limit %d: a page of %d items", limit, len(got))
		}
		short = len(got) < limit
		out = append(out, got...)
		after = got[len(got)-1]
		if between != nil {
			between(after)
		}
	}
	t.Fatalf("limit %d: the walk does not end (%d items so far)", limit, len(out))
	return nil
}

// testPagingAmidChanges walks the listing while, between pages, items are
// inserted behind the cursor (never shown: that part was read) and ahead of
// it (shown once, in place), and dropped ahead (never shown) and behind
// (already shown). The walk must return exactly the items a reader expects:
// no duplicate, no gap, in order.
func testPagingAmidChanges(t *testing.T, pg paged, nums []int) {
	dir := 1
	if pg.desc {
		dir = -1
	}
	in := make(map[int]bool, len(nums)) // in the listing now
	used := make(map[int]bool)          // ever created
	for _, n := range nums {
		in[n], used[n] = true, true
	}
	seen := make(map[int]bool)
	shown := make(map[int]bool) // what the walk must return
	for _, n := range nums {
		shown[n] = true
	}
	got := walk(t, pg, 7, func(last string) {
		cur := numOf(t, pg, last)
		for n := range in {
			if (n-cur)*dir <= 0 {
				seen[n] = true
			}
		}
		if n := cur - 5*dir; n >= 0 && !used[n] {
			pg.add(t, n) // behind the cursor: not shown
			in[n], used[n] = true, true
		}
		// Ahead, within the fixture's range, so the walk ends.
		if n := cur + 25*dir; n >= 0 && n < pagedItems*10 && !used[n] {
			pg.add(t, n) // ahead: shown
			in[n], used[n], shown[n] = true, true, true
		}
		if pg.drop == nil {
			return
		}
		for _, n := range []int{cur + 20*dir, cur - 10*dir} {
			if in[n] {
				pg.drop(t, n) // ahead: not shown; behind: shown already
				delete(in, n)
				if !seen[n] {
					delete(shown, n)
				}
			}
		}
	})
	var want []int
	for n := range shown {
		want = append(want, n)
	}
	slices.Sort(want)
	if pg.desc {
		slices.Reverse(want)
	}
	sameList(t, "walk amid inserts and deletes", got, ids(want, pg.id))
}

// numOf is the number of the item with the id.
func numOf(t *testing.T, pg paged, id string) int {
	t.Helper()
	n, err := strconv.Atoi(id[strings.LastIndexByte(id, '_')+1:])
	if err != nil || pg.id(n) != id {
		t.Fatalf("id %q is not an item id of this fixture", id)
	}
	return n
}
