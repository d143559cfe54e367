package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
)

// TestPagingArguments: the use cases own the paging defaults and bounds
// (first: default 50, 1 to 200; after: an id; limit: the deprecated name
// of first on notifications), the same for every list.
func TestPagingArguments(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 210 {
		if _, err := f.st.CreateTask(ctx, store.Task{Title: fmt.Sprint("t", i), UserID: "alice"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.CreateNotification(ctx, store.Notification{UserID: "alice", Message: fmt.Sprint("n", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n := func(v int) *int { return &v }
	s := func(v string) *string { return &v }
	type listFn func(args service.PageArgs) (int, error)
	lists := map[string]listFn{
		"tasks": func(a service.PageArgs) (int, error) {
			ts, err := f.svc.Tasks(as("alice"), nil, a)
			return len(ts), err
		},
		"projects": func(a service.PageArgs) (int, error) {
			ps, err := f.svc.Projects(as("alice"), a)
			return len(ps), err
		},
		"teams": func(a service.PageArgs) (int, error) {
			ts, err := f.svc.Teams(as("alice"), a)
			return len(ts), err
		},
		"notifications": func(a service.PageArgs) (int, error) {
			ns, err := f.svc.Notifications(as("alice"), false, a, nil)
			return len(ns), err
		},
	}
	cases := []struct {
		name string
		args service.PageArgs
		want int    // items, when the list has 210 (tasks and notifications)
		bad  string // in the BAD_USER_INPUT message; "" = no error
	}{
		{"default", service.PageArgs{}, 50, ""},
		{"first 1", service.PageArgs{First: n(1)}, 1, ""},
		{"first 200", service.PageArgs{First: n(200)}, 200, ""},
		{"first 0", service.PageArgs{First: n(0)}, 0, "first must be between 1 and 200, got 0"},
		{"first -3", service.PageArgs{First: n(-3)}, 0, "first must be between 1 and 200"},
		{"first 201", service.PageArgs{First: n(201)}, 0, "first must be between 1 and 200, got 201"},
		{"empty after", service.PageArgs{After: s("")}, 0, "after must be 1 to"},
		{"after too long", service.PageArgs{After: s(strings.Repeat("x", service.MaxIDLen+1))}, 0, "after must be 1 to"},
		{"unknown after", service.PageArgs{After: s("x_unknown")}, 0, `after "x_unknown" is not an item of this list`},
	}
	for name, list := range lists {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				got, err := list(c.args)
				if c.bad != "" {
					if errs.CodeOf(err) != errs.BadUserInput || !strings.Contains(err.Error(), c.bad) {
						t.Fatalf("got %v, want BAD_USER_INPUT %q", err, c.bad)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				// Alice has no project or team: those lists are empty.
				if name == "projects" || name == "teams" {
					c.want = 0
				}
				if got != c.want {
					t.Fatalf("%d items, want %d", got, c.want)
				}
			})
		}
	}

	t.Run("notifications by limit", func(t *testing.T) {
		tests := []struct {
			name         string
			first, limit *int
			want         int
			bad          string
		}{
			{"limit alone", nil, n(7), 7, ""},
			{"first alone", n(8), nil, 8, ""},
			{"limit 201", nil, n(201), 0, "limit must be between 1 and 200, got 201"},
			{"limit 0", nil, n(0), 0, "limit must be between 1 and 200, got 0"},
			{"both, even equal", n(5), n(5), 0, "give first or limit (deprecated), not both"},
		}
		for _, tc := range tests {
			ns, err := f.svc.Notifications(as("alice"), false, service.PageArgs{First: tc.first}, tc.limit)
			if tc.bad != "" {
				if errs.CodeOf(err) != errs.BadUserInput || !strings.Contains(err.Error(), tc.bad) {
					t.Errorf("%s: got %v, want BAD_USER_INPUT %q", tc.name, err, tc.bad)
				}
				continue
			}
			if err != nil || len(ns) != tc.want {
				t.Errorf("%s: %d notifications, %v; want %d", tc.name, len(ns), err, tc.want)
			}
		}
	})

	t.Run("a project's tasks: members only, before after is looked up", func(t *testing.T) {
		p, err := f.svc.CreateProject(as("bob"), "Bob's", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Tasks(as("alice"), &p.ID, service.PageArgs{First: n(5), After: s("x_unknown")})
		if errs.CodeOf(err) != errs.Forbidden {
			t.Fatalf("non-member: got %v, want FORBIDDEN", err)
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		_, err := f.svc.Tasks(ctx, nil, service.PageArgs{})
		if errs.CodeOf(err) != errs.Unauthenticated {
			t.Fatalf("got %v, want UNAUTHENTICATED", err)
		}
	})
}
