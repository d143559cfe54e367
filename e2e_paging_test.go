package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/store"
)

// Lists are paged by keyset (CONTRACT): first (default 50, at most 200) and
// after = the id of the last item of the previous page. These tests walk
// every list over HTTP as a client does and check what it sees.

// pagingWorld is alice's data, seeded through the store (fast, and with
// chosen creation times so ties on created_at are everywhere), and bob's,
// which alice must not page into.
type pagingWorld struct {
	*env
	tasks, projectTasks, projects, teams, notifications, unread []string // alice's lists, in order
	project                                                     string   // alice's project with bob
	bobsTask, bobsProject, bobsTeam, bobsNotification           string
}

// seedAt is item i's creation time: a fixed past instant plus i/3 seconds,
// so items come in threes that tie on creation time.
func seedAt(i int) time.Time {
	return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i/3) * time.Second)
}

func seedPaging(t *testing.T) *pagingWorld {
	e := start(t, nil)
	e.users("alice", "bob")
	st := e.m.store
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	w := &pagingWorld{env: e}

	p, err := st.CreateProject(ctx, store.Project{Name: "Shared", OwnerID: "bob"})
	must(err)
	_, err = st.AddProjectMember(ctx, p.ID, "alice")
	must(err)
	w.project = p.ID
	bp, err := st.CreateProject(ctx, store.Project{Name: "Bob's own", OwnerID: "bob"})
	must(err)
	w.bobsProject = bp.ID
	bt, err := st.CreateTask(ctx, store.Task{Title: "bob's", UserID: "bob", ProjectID: bp.ID, CreatedAt: seedAt(30)})
	must(err)
	w.bobsTask = bt.ID

	// 250 tasks alice sees: her own, assigned to her, and in the shared
	// project; created out of order.
	type row struct {
		id string
		at time.Time
	}
	var tasks, inProject []row
	for i := 249; i >= 0; i-- {
		tk := store.Task{Title: fmt.Sprint("task ", i), UserID: "alice", CreatedAt: seedAt(i)}
		switch i % 3 {
		case 1:
			tk.UserID, tk.AssignedTo = "bob", "alice"
		case 2:
			tk.UserID, tk.ProjectID = "bob", p.ID
		}
		got, err := st.CreateTask(ctx, tk)
		must(err)
		tasks = append(tasks, row{got.ID, got.CreatedAt})
		if tk.ProjectID != "" {
			inProject = append(inProject, row{got.ID, got.CreatedAt})
		}
	}
	byCreation := func(rs []row) []string {
		slices.SortFunc(rs, func(a, b row) int { return cmp.Or(a.at.Compare(b.at), strings.Compare(a.id, b.id)) })
		var out []string
		for _, r := range rs {
			out = append(out, r.id)
		}
		return out
	}
	w.tasks, w.projectTasks = byCreation(tasks), byCreation(inProject)

	w.projects = []string{p.ID}
	for range 60 {
		pr, err := st.CreateProject(ctx, store.Project{Name: "Mine", OwnerID: "alice"})
		must(err)
		w.projects = append(w.projects, pr.ID)
	}
	slices.Sort(w.projects)

	bteam, err := st.CreateTeam(ctx, store.Team{Name: "Bob's", CreatedBy: "bob"})
	must(err)
	w.bobsTeam = bteam.ID
	for range 55 {
		tm, err := st.CreateTeam(ctx, store.Team{Name: "Mine", CreatedBy: "alice"})
		must(err)
		w.teams = append(w.teams, tm.ID)
	}
	slices.Sort(w.teams)

	var ns, unread []row
	for i := range 120 {
		n, err := st.CreateNotification(ctx, store.Notification{UserID: "alice", SenderID: "bob",
			Message: fmt.Sprint("n", i), Read: i%4 == 0, CreatedAt: seedAt(i)})
		must(err)
		ns = append(ns, row{n.ID, n.CreatedAt})
		if !n.Read {
			unread = append(unread, row{n.ID, n.CreatedAt})
		}
	}
	newestFirst := func(rs []row) []string {
		out := byCreation(rs)
		slices.Reverse(out)
		return out
	}
	w.notifications, w.unread = newestFirst(ns), newestFirst(unread)
	bn, err := st.CreateNotification(ctx, store.Notification{UserID: "bob", Message: "bob's"})
	must(err)
	w.bobsNotification = bn.ID
	return w
}

// The lists, each with its page query ($first and $after, plus vars).
type pagedList struct {
	name, key, query string
	vars             map[string]any
	want             func(w *pagingWorld) []string
}

func pagedLists(w *pagingWorld) []pagedList {
	return []pagedList{
		{"tasks", "tasks", `query($first: Int, $after: ID) { tasks(first: $first, after: $after) { id } }`, nil,
			func(w *pagingWorld) []string { return w.tasks }},
		{"tasks of a project", "tasks", `query($p: ID, $first: Int, $after: ID) { tasks(projectId: $p, first: $first, after: $after) { id } }`,
			map[string]any{"p": w.project}, func(w *pagingWorld) []string { return w.projectTasks }},
		{"projects", "projects", `query($first: Int, $after: ID) { projects(first: $first, after: $after) { id } }`, nil,
			func(w *pagingWorld) []string { return w.projects }},
		{"teams", "teams", `query($first: Int, $after: ID) { teams(first: $first, after: $after) { id } }`, nil,
			func(w *pagingWorld) []string { return w.teams }},
		{"notifications", "notifications", `query($first: Int, $after: ID) { notifications(first: $first, after: $after) { id } }`, nil,
			func(w *pagingWorld) []string { return w.notifications }},
		{"unread notifications", "notifications", `query($first: Int, $after: ID) { notifications(unreadOnly: true, first: $first, after: $after) { id } }`, nil,
			func(w *pagingWorld) []string { return w.unread }},
		{"notifications by limit (deprecated)", "notifications", `query($first: Int, $after: ID) { notifications(limit: $first, after: $after) { id } }`, nil,
			func(w *pagingWorld) []string { return w.notifications }},
	}
}

// walk reads a whole list as a client does: a first page, then after = the
// last id, until a page comes back shorter than the page size (first, or
// the default 50 when first is 0: not sent). between runs after each page.
func (w *pagingWorld) walk(t *testing.T, l pagedList, first int, between func(page int, last string)) [][]string {
	t.Helper()
	size := first
	if size == 0 {
		size = 50
	}
	var pages [][]string
	var after any
	for range 100 {
		vars := maps.Clone(l.vars)
		if vars == nil {
			vars = map[string]any{}
		}
		vars["after"] = after
		if first != 0 {
			vars["first"] = first
		}
		page := w.ids("alice", l.query, vars, l.key)
		pages = append(pages, page)
		if len(page) > size {
			t.Fatalf("%s: a page of %d items, page size %d", l.name, len(page), size)
		}
		if len(page) < size {
			return pages
		}
		after = page[len(page)-1]
		if between != nil {
			between(len(pages), page[len(page)-1])
		}
	}
	t.Fatalf("%s: the walk does not end", l.name)
	return nil
}

func TestListsArePagedOverHTTP(t *testing.T) {
	w := seedPaging(t)
	for _, l := range pagedLists(w) {
		t.Run(l.name, func(t *testing.T) {
			want := l.want(w)
			for _, first := range []int{0, 7, 200} {
				pages := w.walk(t, l, first, nil)
				size := cmp.Or(first, 50)
				if n := len(pages); n != len(want)/size+1 {
					t.Errorf("first %d: %d pages for %d items", first, n, len(want))
				}
				wantIDs(t, fmt.Sprint(l.name, " walked by ", first), slices.Concat(pages...), want...)
			}
		})
	}
}

// TestTaskPagesAmidChanges: a task created while a client walks its tasks
// comes once, at the end (it is the newest); a task deleted ahead of the
// client never comes; nothing is repeated or skipped.
func TestTaskPagesAmidChanges(t *testing.T) {
	w := seedPaging(t)
	l := pagedLists(w)[0]
	want := slices.Clone(w.tasks)
	pages := w.walk(t, l, 40, func(page int, last string) {
		if page != 2 {
			return
		}
		i := slices.Index(want, last)
		if _, err := w.m.store.DeleteTask(context.Background(), want[i+5]); err != nil {
			t.Fatal(err)
		}
		want = slices.Delete(want, i+5, i+6)
		want = append(want, w.createTask("alice", "new while paging", "", ""))
	})
	wantIDs(t, "tasks walked amid changes", slices.Concat(pages...), want...)
}

// TestPagingArgumentsAreChecked: what a client sees for bad paging
// arguments. An after that is not in the list is refused the same way
// whether the id exists elsewhere (another user's) or not at all.
func TestPagingArgumentsAreChecked(t *testing.T) {
	w := seedPaging(t)
	v := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	// A task alice sees, but not through the shared project.
	var outside string
	for _, id := range w.tasks {
		if !slices.Contains(w.projectTasks, id) {
			outside = id
			break
		}
	}
	cases := []struct {
		name, query string
		vars        map[string]any
		code        string
	}{
		{"first 0", `{ tasks(first: 0) { id } }`, nil, "BAD_USER_INPUT"},
		{"first -1", `{ projects(first: -1) { id } }`, nil, "BAD_USER_INPUT"},
		{"first 201", `{ teams(first: 201) { id } }`, nil, "BAD_USER_INPUT"},
		{"notifications first 201", `{ notifications(first: 201) { id } }`, nil, "BAD_USER_INPUT"},
		{"notifications limit 0", `{ notifications(limit: 0) { id } }`, nil, "BAD_USER_INPUT"},
		{"first and limit", `{ notifications(first: 5, limit: 5) { id } }`, nil, "BAD_USER_INPUT"},
		{"empty after", `{ tasks(after: "") { id } }`, nil, "BAD_USER_INPUT"},
		{"unknown after", `{ tasks(after: "tsk_nope") { id } }`, nil, "BAD_USER_INPUT"},
		{"after another user's task", `query($a: ID) { tasks(after: $a) { id } }`, v("a", w.bobsTask), "BAD_USER_INPUT"},
		{"after a task of another list", `query($p: ID, $a: ID) { tasks(projectId: $p, after: $a) { id } }`,
			v("p", w.project, "a", outside), "BAD_USER_INPUT"},
		{"after a project I am not in", `query($a: ID) { projects(after: $a) { id } }`, v("a", w.bobsProject), "BAD_USER_INPUT"},
		{"after a team I am not in", `query($a: ID) { teams(after: $a) { id } }`, v("a", w.bobsTeam), "BAD_USER_INPUT"},
		{"after another user's notification", `query($a: ID) { notifications(after: $a) { id } }`, v("a", w.bobsNotification), "BAD_USER_INPUT"},
		{"a project I am not in, paged", `query($p: ID) { tasks(projectId: $p, first: 5) { id } }`, v("p", w.bobsProject), "FORBIDDEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { w.fails("alice", c.query, c.vars, c.code) })
	}

	t.Run("unknown and foreign after: one answer", func(t *testing.T) {
		msg := func(after string) string {
			_, r := w.post("alice", `query($a: ID) { tasks(after: $a) { id } }`, v("a", after))
			if len(r.Errors) != 1 {
				t.Fatalf("after %s: %+v", after, r)
			}
			return strings.ReplaceAll(r.Errors[0].Message, after, "ID")
		}
		if a, b := msg("tsk_nope"), msg(w.bobsTask); a != b {
			t.Errorf("unknown after: %q; bob's task: %q", a, b)
		}
	})

	t.Run("bounds that hold", func(t *testing.T) {
		for _, q := range []string{`{ tasks(first: 1) { id } }`, `{ tasks(first: 200) { id } }`,
			`{ notifications(limit: 200) { id } }`, `{ notifications(limit: null, first: 3) { id } }`} {
			w.do("alice", q, nil, nil)
		}
		// After the last item: an empty page, not an error.
		last := w.tasks[len(w.tasks)-1]
		if got := w.ids("alice", `query($a: ID) { tasks(after: $a) { id } }`, v("a", last), "tasks"); len(got) != 0 {
			t.Errorf("after the last task: %v", got)
		}
	})
}

// TestListResponsesAreBounded: 250 tasks with long descriptions no longer
// come in one response. The default page is 50 tasks and the largest 200,
// so the response's size is bounded by the page, not by what the user has.
func TestListResponsesAreBounded(t *testing.T) {
	e := start(t, nil)
	e.users("alice")
	st := e.m.store
	desc := strings.Repeat("d", 4000)
	for i := range 250 {
		if _, err := st.CreateTask(context.Background(), store.Task{Title: fmt.Sprint("t", i), Description: desc, UserID: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{`{ tasks { id description } }`, 50},
		{`{ tasks(first: 200) { id description } }`, 200},
	} {
		status, raw := e.postRaw(context.Background(), "alice", c.query, nil)
		var r struct {
			Data   struct{ Tasks []struct{ ID string } }
			Errors []gqlError
		}
		if err := json.Unmarshal(raw, &r); err != nil || status != 200 || len(r.Errors) > 0 {
			t.Fatalf("%s: %d %v %+v", c.query, status, err, r.Errors)
		}
		// Each task is its description plus under 100 bytes of JSON.
		if n := len(r.Data.Tasks); n != c.want || len(raw) > c.want*(len(desc)+100) {
			t.Errorf("%s: %d tasks in %d bytes, want %d tasks in at most %d bytes", c.query, n, len(raw), c.want, c.want*(len(desc)+100))
		}
		t.Logf("%s: %d tasks, %d bytes", c.query, len(r.Data.Tasks), len(raw))
	}
}
