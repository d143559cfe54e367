package service

import (
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// Lists are paged by keyset (CONTRACT): first (default DefaultPageSize, at
// most MaxPageSize) and after = the id of the last item of the previous
// page. A client walks a list by asking again with after set until a page
// comes back shorter than first (or empty).
const (
	DefaultPageSize = 50
	MaxPageSize     = store.MaxPageLimit
)

// PageArgs are a listing's paging arguments as the client sent them; nil
// is absent.
type PageArgs struct {
	First *int
	After *string
}

// page turns the arguments into a store.Page, or a BadUserInput error that
// names the argument (field is "first", or "limit" for the deprecated
// alias). A first out of range is refused rather than clamped, so a client
// that asks for 1,000 learns it gets at most MaxPageSize instead of
// silently walking short pages.
func (a PageArgs) page(field string) (store.Page, error) {
	p := store.Page{Limit: DefaultPageSize}
	if a.First != nil {
		if *a.First < 1 || *a.First > MaxPageSize {
			return store.Page{}, errs.E(errs.BadUserInput, "%s must be between 1 and %d, got %d", field, MaxPageSize, *a.First)
		}
		p.Limit = *a.First
	}
	if a.After != nil {
		if err := id("after", *a.After); err != nil {
			return store.Page{}, err
		}
		p.After = *a.After
	}
	return p, nil
}
