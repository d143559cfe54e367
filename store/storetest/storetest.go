// Package storetest owns the contract suite that every store.Store adapter
// must pass (store/sqlite now, store/postgres later). An adapter's test
// calls Run with a function that opens a fresh, empty store; the suite then
// specifies, method by method, what the rest of taskpulse may rely on: ids
// and timestamps filled in, exact round-trips, error codes, atomic
// multi-row changes, orderings, and correctness under concurrent use.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// Run runs the contract suite. open must return a new, empty store each time
// it is called (adapters isolate tests with it, e.g. a unique schema per
// call) and arrange for the store to be closed when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"CreateUser", testCreateUser},
		{"UpdateUser", testUpdateUser},
		{"Teams", testTeams},
		{"CreateProject", testCreateProject},
		{"UpdateProject", testUpdateProject},
		{"ProjectMembers", testProjectMembers},
		{"DeleteProject", testDeleteProject},
		{"CreateTask", testCreateTask},
		{"UpdateTask", testUpdateTask},
		{"DeleteTask", testDeleteTask},
		{"ProjectTasks", testProjectTasks},
		{"VisibleTasks", testVisibleTasks},
		{"Notifications", testNotifications},
		{"SharesTeamOrProject", testSharesTeamOrProject},
		{"Settings", testSettings},
		{"ConcurrentSetSettingIfAbsent", testConcurrentSetSetting},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentUpdatesOfOneTask", testConcurrentUpdatesOfOneTask},
	}
	tests = append(tests, consentTests...)
	tests = append(tests, pagingTests()...)
	tests = append(tests, logTests...)
	tests = append(tests, snapshotTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	t.Run("LogEpochPerDatabase", func(t *testing.T) { testLogEpochPerDatabase(t, open) })
}

// base is a fixed instant with a microsecond part, for records whose
// creation times a test chooses (to make orderings deterministic).
var base = time.Date(2024, time.February, 29, 13, 14, 15, 123456000, time.UTC)

// at returns base plus i seconds.
func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

func ptr[T any](v T) *T { return &v }

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code errs.Code, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want %s", what, code)
		return
	}
	if got := errs.CodeOf(err); got != code {
		t.Errorf("%s: got error %v (code %s), want code %s", what, err, got, code)
	}
}

// wantNotFound fails t unless err is NotFound and its message names the
// missing id, so a client can tell which reference was wrong.
func wantNotFound(t *testing.T, err error, id, what string) {
	t.Helper()
	wantCode(t, err, errs.NotFound, what)
	if err != nil && !strings.Contains(err.Error(), id) {
		t.Errorf("%s: error %q does not name the missing %q", what, err, id)
	}
}

// wantErr fails t unless err carries code; a NotFound error must also name
// the missing id, as wantNotFound checks.
func wantErr(t *testing.T, err error, code errs.Code, missing, what string) {
	t.Helper()
	if code != errs.NotFound {
		wantCode(t, err, code, what)
		return
	}
	if missing == "" {
		t.Fatalf("%s: a NotFound case must say which id is missing", what)
	}
	wantNotFound(t, err, missing, what)
}

func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// same fails t unless got == want; records compare field by field, times
// included (UTC, microseconds, so equal instants are equal values).
func same[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func sameList[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil slice, want a list (empty listings are empty lists)", what)
	}
	if len(got) != len(want) {
		t.Errorf("%s: got %d items, want %d:\n got  %+v\n want %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s[%d]:\n got  %+v\n want %+v", what, i, got[i], want[i])
		}
	}
}

// ids maps records to their ids; a nil list stays nil, so that sameList
// still catches a listing that returned nil.
func ids[T any](xs []T, id func(T) string) []string {
	if xs == nil {
		return nil
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func userIDs(us []store.User) []string { return ids(us, func(u store.User) string { return u.ID }) }
func taskIDs(ts []store.Task) []string { return ids(ts, func(t store.Task) string { return t.ID }) }
func teamIDs(ts []store.Team) []string { return ids(ts, func(t store.Team) string { return t.ID }) }
func projectIDs(ps []store.Project) []string {
	return ids(ps, func(p store.Project) string { return p.ID })
}

// member is one expected answer of IsTeamMember or IsProjectMember.
type member struct {
	group, user string
	want        bool
}

// wantMembers fails t unless is (IsTeamMember or IsProjectMember) gives
// each case its expected answer.
func wantMembers(t *testing.T, name string, is func(ctx context.Context, group, user string) (bool, error), cases ...member) {
	t.Helper()
	for _, c := range cases {
		ok, err := is(t.Context(), c.group, c.user)
		noErr(t, err, name)
		same(t, fmt.Sprintf("%s(%s, %s)", name, c.group, c.user), ok, c.want)
	}
}

// listing is what a listing under one key (a user's teams, a team's
// members) must return: the records with these ids, in this order.
type listing struct {
	key  string
	want []string
}

// wantListings fails t unless, for each case, list(key) returns exactly the
// records with the wanted ids, in order, each equal to what get returns for
// its id: listings show records as stored.
func wantListings[T comparable](t *testing.T, name string,
	list func(ctx context.Context, key string) ([]T, error),
	get func(ctx context.Context, id string) (T, error),
	idsOf func([]T) []string, cases ...listing) {
	t.Helper()
	for _, c := range cases {
		what := name + "(" + c.key + ")"
		got, err := list(t.Context(), c.key)
		noErr(t, err, what)
		gotIDs := idsOf(got)
		sameList(t, what, gotIDs, c.want)
		for i, x := range got {
			one, err := get(t.Context(), gotIDs[i])
			noErr(t, err, what+": read "+gotIDs[i])
			same(t, what+": record "+gotIDs[i], x, one)
		}
	}
}

// wantStamp fails t unless ts is a store timestamp (UTC, whole
// microseconds) taken between before and after.
func wantStamp(t *testing.T, what string, ts, before, after time.Time) {
	t.Helper()
	if ts.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, ts.Location())
	}
	if ts.Nanosecond()%1000 != 0 {
		t.Errorf("%s: %v has sub-microsecond digits", what, ts)
	}
	if ts.Before(before.Truncate(time.Microsecond)) || ts.After(after) {
		t.Errorf("%s: %v not between %v and %v", what, ts, before, after)
	}
}

// wantPrefix fails t unless id was generated with the given prefix.
func wantPrefix(t *testing.T, what, id, prefix string) {
	t.Helper()
	if !strings.HasPrefix(id, prefix+"_") || len(id) <= len(prefix)+1 {
		t.Errorf("%s: id %q, want a generated %q id", what, id, prefix+"_…")
	}
}

func mkUser(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), store.User{ID: id, Name: strings.ToUpper(id[:1]) + id[1:]})
	noErr(t, err, "CreateUser "+id)
	return u
}

func mkUsers(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		mkUser(t, s, id)
	}
}

func mkProject(t *testing.T, s store.Store, id, owner string, members ...string) store.Project {
	t.Helper()
	p, err := s.CreateProject(t.Context(), store.Project{ID: id, Name: "Project " + id, OwnerID: owner})
	noErr(t, err, "CreateProject "+id)
	for _, m := range members {
		_, err := s.AddProjectMember(t.Context(), p.ID, m)
		noErr(t, err, "AddProjectMember "+m)
	}
	return p
}

func mkTask(t *testing.T, s store.Store, tk store.Task) store.Task {
	t.Helper()
	if tk.Title == "" {
		tk.Title = "task " + tk.ID
	}
	got, err := s.CreateTask(t.Context(), tk)
	noErr(t, err, "CreateTask "+tk.ID)
	return got
}

func testPing(t *testing.T, s store.Store) {
	noErr(t, s.Ping(t.Context()), "Ping")
}

func testCreateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	tests := []struct {
		name string
		in   store.User
		want store.User // zero CreatedAt: filled in with the current time
	}{
		{
			name: "every field",
			in:   store.User{ID: "alice", Name: "Alice Liddell", Email: "alice@example.com", Admin: true, CreatedAt: base},
			want: store.User{ID: "alice", Name: "Alice Liddell", Email: "alice@example.com", Admin: true, CreatedAt: base},
		},
		{
			name: "optional fields empty, time filled in",
			in:   store.User{ID: "bob", Name: "Bob"},
			want: store.User{ID: "bob", Name: "Bob"},
		},
		{
			name: "time in another zone with nanoseconds is stored as UTC microseconds",
			in:   store.User{ID: "carol", Name: "Carol", CreatedAt: time.Date(2024, 3, 1, 9, 0, 0, 123456789, zone)},
			want: store.User{ID: "carol", Name: "Carol", CreatedAt: time.Date(2024, 3, 1, 3, 30, 0, 123456000, time.UTC)},
		},
		{
			name: "unicode survives",
			in:   store.User{ID: "дора", Name: "Дора 🚀 O'Brien \"quoted\"", Email: "d@x", CreatedAt: base},
			want: store.User{ID: "дора", Name: "Дора 🚀 O'Brien \"quoted\"", Email: "d@x", CreatedAt: base},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			got, err := s.CreateUser(ctx, tc.in)
			noErr(t, err, "CreateUser")
			after := time.Now()
			want := tc.want
			if want.CreatedAt.IsZero() {
				wantStamp(t, "CreatedAt", got.CreatedAt, before, after)
				want.CreatedAt = got.CreatedAt
			}
			same(t, "CreateUser returned", got, want)
			read, err := s.User(ctx, tc.in.ID)
			noErr(t, err, "User")
			same(t, "User read back", read, want)
		})
	}

	t.Run("duplicate id is BadUserInput and keeps the first", func(t *testing.T) {
		_, err := s.CreateUser(ctx, store.User{ID: "alice", Name: "Impostor"})
		wantCode(t, err, errs.BadUserInput, "CreateUser duplicate")
		u, err := s.User(ctx, "alice")
		noErr(t, err, "User")
		same(t, "Name", u.Name, "Alice Liddell")
	})
	t.Run("empty id is BadUserInput", func(t *testing.T) {
		_, err := s.CreateUser(ctx, store.User{Name: "Nobody"})
		wantCode(t, err, errs.BadUserInput, "CreateUser without id")
	})
	t.Run("missing user is NotFound", func(t *testing.T) {
		_, err := s.User(ctx, "nobody")
		wantNotFound(t, err, "nobody", "User")
	})
}

func testTeams(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob", "carol", "dave")

	before := time.Now()
	team, err := s.CreateTeam(ctx, store.Team{Name: "Core", CreatedBy: "carol"})
	noErr(t, err, "CreateTeam")
	wantPrefix(t, "CreateTeam", team.ID, "team")
	wantStamp(t, "CreatedAt", team.CreatedAt, before, time.Now())
	same(t, "CreateTeam returned", team, store.Team{ID: team.ID, Name: "Core", CreatedBy: "carol", CreatedAt: team.CreatedAt})
	got, err := s.Team(ctx, team.ID)
	noErr(t, err, "Team")
	same(t, "Team read back", got, team)

	t.Run("creator is the first member", func(t *testing.T) {
		wantListings(t, "TeamMembers", s.TeamMembers, s.User, userIDs, listing{team.ID, []string{"carol"}})
		wantMembers(t, "IsTeamMember", s.IsTeamMember, member{team.ID, "carol", true})
	})

	t.Run("AddTeamMember is idempotent", func(t *testing.T) {
		for _, step := range []struct {
			user string
			want bool
		}{{"bob", true}, {"alice", true}, {"bob", false}, {"carol", false}} {
			added, err := s.AddTeamMember(ctx, team.ID, step.user)
			noErr(t, err, "AddTeamMember "+step.user)
			same(t, "added "+step.user, added, step.want)
		}
		wantListings(t, "TeamMembers", s.TeamMembers, s.User, userIDs,
			listing{team.ID, []string{"alice", "bob", "carol"}})
	})

	t.Run("IsTeamMember", func(t *testing.T) {
		wantMembers(t, "IsTeamMember", s.IsTeamMember,
			member{team.ID, "alice", true},
			member{team.ID, "dave", false},
			member{team.ID, "nobody", false},
			member{"team_missing", "alice", false})
	})

	t.Run("UserTeams ordered by id", func(t *testing.T) {
		for _, id := range []string{"team_zz", "team_aa"} {
			_, err := s.CreateTeam(ctx, store.Team{ID: id, Name: id, CreatedBy: "dave", CreatedAt: base})
			noErr(t, err, "CreateTeam "+id)
		}
		aa, err := s.Team(ctx, "team_aa")
		noErr(t, err, "Team")
		same(t, "explicit CreatedAt kept", aa.CreatedAt, base)
		_, err = s.AddTeamMember(ctx, "team_zz", "alice")
		noErr(t, err, "AddTeamMember")
		mkUser(t, s, "erin")
		alices := []string{team.ID, "team_zz"}
		slices.Sort(alices) // team.ID is generated
		wantListings(t, "UserTeams", whole(s.UserTeams), s.Team, teamIDs,
			listing{"dave", []string{"team_aa", "team_zz"}},
			listing{"alice", alices},
			listing{"erin", []string{}})
	})

	t.Run("errors", func(t *testing.T) {
		_, err := s.CreateTeam(ctx, store.Team{Name: "Ghosts", CreatedBy: "nobody"})
		wantNotFound(t, err, "nobody", "CreateTeam by a missing user")
		_, err = s.CreateTeam(ctx, store.Team{ID: team.ID, Name: "Again", CreatedBy: "alice"})
		wantCode(t, err, errs.BadUserInput, "CreateTeam with a taken id")
		_, err = s.Team(ctx, "team_missing")
		wantNotFound(t, err, "team_missing", "Team")
		_, err = s.AddTeamMember(ctx, "team_missing", "alice")
		wantNotFound(t, err, "team_missing", "AddTeamMember to a missing team")
		_, err = s.AddTeamMember(ctx, team.ID, "nobody")
		wantNotFound(t, err, "nobody", "AddTeamMember of a missing user")
		_, err = s.TeamMembers(ctx, "team_missing")
		wantNotFound(t, err, "team_missing", "TeamMembers")
		_, err = s.UserTeams(ctx, "nobody", wholePage())
		wantNotFound(t, err, "nobody", "UserTeams")
	})
}

func testCreateProject(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")
	team, err := s.CreateTeam(ctx, store.Team{Name: "Core", CreatedBy: "alice"})
	noErr(t, err, "CreateTeam")

	t.Run("fills id and times, owner is a member", func(t *testing.T) {
		before := time.Now()
		p, err := s.CreateProject(ctx, store.Project{Name: "Launch", OwnerID: "bob"})
		noErr(t, err, "CreateProject")
		wantPrefix(t, "CreateProject", p.ID, "prj")
		wantStamp(t, "CreatedAt", p.CreatedAt, before, time.Now())
		same(t, "UpdatedAt equals CreatedAt", p.UpdatedAt, p.CreatedAt)
		same(t, "CreateProject returned", p,
			store.Project{ID: p.ID, Name: "Launch", OwnerID: "bob", CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt})
		got, err := s.Project(ctx, p.ID)
		noErr(t, err, "Project")
		same(t, "Project read back", got, p)
		ms, err := s.ProjectMembers(ctx, p.ID)
		noErr(t, err, "ProjectMembers")
		sameList(t, "members", userIDs(ms), []string{"bob"})
		ps, err := s.AllUserProjects(ctx, "bob")
		noErr(t, err, "UserProjects")
		sameList(t, "UserProjects", ps, []store.Project{p})
	})

	t.Run("every field round-trips", func(t *testing.T) {
		in := store.Project{ID: "prj_explicit", Name: "Team's «project»", OwnerID: "alice", TeamID: team.ID,
			CreatedAt: base, UpdatedAt: at(60)}
		p, err := s.CreateProject(ctx, in)
		noErr(t, err, "CreateProject")
		same(t, "CreateProject returned", p, in)
		got, err := s.Project(ctx, in.ID)
		noErr(t, err, "Project")
		same(t, "Project read back", got, in)
	})

	t.Run("errors leave nothing behind", func(t *testing.T) {
		tests := []struct {
			name    string
			in      store.Project
			code    errs.Code
			missing string
		}{
			{"missing owner", store.Project{ID: "prj_x1", Name: "x", OwnerID: "nobody"}, errs.NotFound, "nobody"},
			{"missing team", store.Project{ID: "prj_x2", Name: "x", OwnerID: "alice", TeamID: "team_missing"}, errs.NotFound, "team_missing"},
			{"taken id", store.Project{ID: "prj_explicit", Name: "x", OwnerID: "bob"}, errs.BadUserInput, ""},
		}
		for _, tc := range tests {
			_, err := s.CreateProject(ctx, tc.in)
			wantErr(t, err, tc.code, tc.missing, tc.name)
		}
		_, err := s.Project(ctx, "prj_x2")
		wantNotFound(t, err, "prj_x2", "Project after a failed create")
		ps, err := s.AllUserProjects(ctx, "bob")
		noErr(t, err, "UserProjects")
		if len(ps) != 1 {
			t.Errorf("bob's projects after failed creates: %v, want only the first", projectIDs(ps))
		}
		_, err = s.Project(ctx, "prj_missing")
		wantNotFound(t, err, "prj_missing", "Project")
	})
}

func testUpdateProject(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "alice")
	p, err := s.CreateProject(ctx, store.Project{Name: "Old", OwnerID: "alice", CreatedAt: base})
	noErr(t, err, "CreateProject")

	steps := []struct {
		name  string
		patch store.ProjectPatch
		want  string
	}{
		{"rename", store.ProjectPatch{Name: ptr("New")}, "New"},
		{"nil name untouched", store.ProjectPatch{}, "New"},
		{"rename again", store.ProjectPatch{Name: ptr("Newer")}, "Newer"},
	}
	prev := p
	for _, st := range steps {
		before := time.Now()
		got, err := s.UpdateProject(ctx, p.ID, st.patch)
		noErr(t, err, st.name)
		same(t, st.name+": name", got.Name, st.want)
		same(t, st.name+": CreatedAt unchanged", got.CreatedAt, p.CreatedAt)
		same(t, st.name+": owner unchanged", got.OwnerID, p.OwnerID)
		if got.UpdatedAt.Before(prev.UpdatedAt) {
			t.Errorf("%s: UpdatedAt went back from %v to %v", st.name, prev.UpdatedAt, got.UpdatedAt)
		}
		wantStamp(t, st.name+": UpdatedAt", got.UpdatedAt, before, time.Now())
		read, err := s.Project(ctx, p.ID)
		noErr(t, err, "Project")
		same(t, st.name+": read back", read, got)
		prev = got
	}
	_, err = s.UpdateProject(ctx, "prj_missing", store.ProjectPatch{Name: ptr("x")})
	wantNotFound(t, err, "prj_missing", "UpdateProject")
}

func testProjectMembers(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob", "carol", "dave")
	p := mkProject(t, s, "prj_p", "carol")

	steps := []struct {
		op   string // "add" or "remove"
		user string
		want bool
	}{
		{"add", "bob", true},
		{"add", "alice", true},
		{"add", "bob", false},
		{"add", "carol", false}, // the owner is already a member
		{"remove", "bob", true},
		{"remove", "bob", false},
		{"remove", "dave", false},
		{"add", "bob", true},
	}
	for i, st := range steps {
		var got bool
		var err error
		if st.op == "add" {
			got, err = s.AddProjectMember(ctx, p.ID, st.user)
		} else {
			got, err = s.RemoveProjectMember(ctx, p.ID, st.user)
		}
		noErr(t, err, st.op+" "+st.user)
		same(t, fmt.Sprintf("step %d: %s %s", i, st.op, st.user), got, st.want)
	}
	// Ordered by id, the owner included.
	wantListings(t, "ProjectMembers", s.ProjectMembers, s.User, userIDs,
		listing{p.ID, []string{"alice", "bob", "carol"}})
	wantMembers(t, "IsProjectMember", s.IsProjectMember,
		member{p.ID, "alice", true}, member{p.ID, "carol", true}, member{p.ID, "dave", false},
		member{p.ID, "nobody", false}, member{"prj_missing", "alice", false})

	t.Run("owner cannot be removed", func(t *testing.T) {
		_, err := s.RemoveProjectMember(ctx, p.ID, "carol")
		wantCode(t, err, errs.BadUserInput, "RemoveProjectMember owner")
		wantMembers(t, "IsProjectMember", s.IsProjectMember, member{p.ID, "carol", true})
	})

	t.Run("UserProjects ordered by id", func(t *testing.T) {
		mkProject(t, s, "prj_b", "dave", "alice")
		mkProject(t, s, "prj_a", "dave")
		mkUser(t, s, "erin")
		for name, list := range map[string]func(context.Context, string) ([]store.Project, error){
			"UserProjects": whole(s.UserProjects), "AllUserProjects": s.AllUserProjects,
		} {
			wantListings(t, name, list, s.Project, projectIDs,
				listing{"alice", []string{"prj_b", "prj_p"}},
				listing{"dave", []string{"prj_a", "prj_b"}},
				listing{"erin", []string{}})
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := s.AddProjectMember(ctx, "prj_missing", "alice")
		wantNotFound(t, err, "prj_missing", "AddProjectMember to a missing project")
		_, err = s.AddProjectMember(ctx, p.ID, "nobody")
		wantNotFound(t, err, "nobody", "AddProjectMember of a missing user")
		_, err = s.RemoveProjectMember(ctx, "prj_missing", "alice")
		wantNotFound(t, err, "prj_missing", "RemoveProjectMember from a missing project")
		_, err = s.ProjectMembers(ctx, "prj_missing")
		wantNotFound(t, err, "prj_missing", "ProjectMembers")
		_, err = s.UserProjects(ctx, "nobody", wholePage())
		wantNotFound(t, err, "nobody", "UserProjects")
		_, err = s.AllUserProjects(ctx, "nobody")
		wantNotFound(t, err, "nobody", "AllUserProjects")
	})
}

func testDeleteProject(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")
	p := mkProject(t, s, "prj_doomed", "alice", "bob")
	other := mkProject(t, s, "prj_other", "alice", "bob")
	doomed := []store.Task{
		mkTask(t, s, store.Task{ID: "tsk_3", ProjectID: p.ID, UserID: "alice", CreatedAt: at(3)}),
		mkTask(t, s, store.Task{ID: "tsk_1", ProjectID: p.ID, UserID: "bob", AssignedTo: "alice", CreatedAt: at(1)}),
		mkTask(t, s, store.Task{ID: "tsk_2", ProjectID: p.ID, UserID: "alice", Description: "d", CreatedAt: at(2)}),
	}
	updated, err := s.UpdateTask(ctx, "tsk_2", store.TaskPatch{Status: ptr(store.StatusDone)})
	noErr(t, err, "UpdateTask")
	doomed[2] = updated
	kept := []store.Task{
		mkTask(t, s, store.Task{ID: "tsk_personal", UserID: "bob", CreatedAt: at(0)}),
		mkTask(t, s, store.Task{ID: "tsk_other", ProjectID: other.ID, UserID: "alice", CreatedAt: at(4)}),
	}

	gotP, gotTasks, err := s.DeleteProject(ctx, p.ID)
	noErr(t, err, "DeleteProject")
	same(t, "deleted project", gotP, p)
	sameList(t, "deleted tasks, as they were, by creation", gotTasks,
		[]store.Task{doomed[1], doomed[2], doomed[0]})

	_, err = s.Project(ctx, p.ID)
	wantNotFound(t, err, p.ID, "Project after delete")
	for _, tk := range doomed {
		_, err := s.Task(ctx, tk.ID)
		wantNotFound(t, err, tk.ID, "Task of a deleted project")
	}
	wantMembers(t, "IsProjectMember (deleted project)", s.IsProjectMember,
		member{p.ID, "alice", false}, member{p.ID, "bob", false})
	wantListings(t, "UserProjects", whole(s.UserProjects), s.Project, projectIDs,
		listing{"alice", []string{other.ID}}, listing{"bob", []string{other.ID}})
	vis, err := s.VisibleTasks(ctx, "bob", wholePage())
	noErr(t, err, "VisibleTasks")
	sameList(t, "bob's tasks after delete", vis, kept)
	for _, tk := range kept {
		got, err := s.Task(ctx, tk.ID)
		noErr(t, err, "Task")
		same(t, "untouched task", got, tk)
	}

	_, _, err = s.DeleteProject(ctx, p.ID)
	wantNotFound(t, err, p.ID, "DeleteProject again")
	_, err = s.ProjectTasks(ctx, p.ID, wholePage())
	wantNotFound(t, err, p.ID, "ProjectTasks of a deleted project")

	empty := mkProject(t, s, "prj_empty", "alice")
	_, tasks, err := s.DeleteProject(ctx, empty.ID)
	noErr(t, err, "DeleteProject without tasks")
	sameList(t, "tasks of an empty project", tasks, []store.Task{})
}

func testCreateTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")
	p := mkProject(t, s, "prj_p", "alice", "bob")

	t.Run("fills id, status, version and times", func(t *testing.T) {
		before := time.Now()
		tk, err := s.CreateTask(ctx, store.Task{Title: "Write docs", UserID: "alice", Version: 42})
		noErr(t, err, "CreateTask")
		wantPrefix(t, "CreateTask", tk.ID, "tsk")
		wantStamp(t, "CreatedAt", tk.CreatedAt, before, time.Now())
		same(t, "CreateTask returned", tk, store.Task{ID: tk.ID, Title: "Write docs", Status: store.StatusTodo,
			UserID: "alice", Version: 1, CreatedAt: tk.CreatedAt, UpdatedAt: tk.CreatedAt})
		got, err := s.Task(ctx, tk.ID)
		noErr(t, err, "Task")
		same(t, "Task read back", got, tk)
	})

	t.Run("every field round-trips", func(t *testing.T) {
		in := store.Task{ID: "tsk_full", Title: "Ship it", Description: "multi\nline — ✓", Status: store.StatusInProgress,
			ProjectID: p.ID, UserID: "alice", AssignedTo: "bob", CreatedAt: base, UpdatedAt: at(1)}
		want := in
		want.Version = 1
		tk, err := s.CreateTask(ctx, in)
		noErr(t, err, "CreateTask")
		same(t, "CreateTask returned", tk, want)
		got, err := s.Task(ctx, in.ID)
		noErr(t, err, "Task")
		same(t, "Task read back", got, want)
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name    string
			in      store.Task
			code    errs.Code
			missing string
		}{
			{"missing owner", store.Task{ID: "tsk_e1", Title: "x", UserID: "nobody"}, errs.NotFound, "nobody"},
			{"missing project", store.Task{ID: "tsk_e2", Title: "x", UserID: "alice", ProjectID: "prj_missing"}, errs.NotFound, "prj_missing"},
			{"missing assignee", store.Task{ID: "tsk_e3", Title: "x", UserID: "alice", AssignedTo: "ghost"}, errs.NotFound, "ghost"},
			{"unknown status", store.Task{ID: "tsk_e4", Title: "x", UserID: "alice", Status: "DOING"}, errs.BadUserInput, ""},
			{"taken id", store.Task{ID: "tsk_full", Title: "x", UserID: "alice"}, errs.BadUserInput, ""},
		}
		for _, tc := range tests {
			_, err := s.CreateTask(ctx, tc.in)
			wantErr(t, err, tc.code, tc.missing, tc.name)
			if tc.in.ID != "tsk_full" {
				_, err = s.Task(ctx, tc.in.ID)
				wantNotFound(t, err, tc.in.ID, tc.name+": Task afterwards")
			}
		}
		got, err := s.Task(ctx, "tsk_full")
		noErr(t, err, "Task")
		same(t, "title after a conflicting create", got.Title, "Ship it")
		_, err = s.Task(ctx, "tsk_missing")
		wantNotFound(t, err, "tsk_missing", "Task")
	})
}

func testUpdateTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")
	p := mkProject(t, s, "prj_p", "alice")
	orig := mkTask(t, s, store.Task{ID: "tsk_u", Title: "Title", Description: "Desc", ProjectID: p.ID,
		UserID: "alice", CreatedAt: base})

	steps := []struct {
		name  string
		patch store.TaskPatch
		apply func(*store.Task) // what the patch changes
	}{
		{"title only", store.TaskPatch{Title: ptr("New title")}, func(t *store.Task) { t.Title = "New title" }},
		{"status", store.TaskPatch{Status: ptr(store.StatusInProgress)}, func(t *store.Task) { t.Status = store.StatusInProgress }},
		{"assign", store.TaskPatch{AssignedTo: ptr("bob")}, func(t *store.Task) { t.AssignedTo = "bob" }},
		{"empty patch still bumps the version", store.TaskPatch{}, func(*store.Task) {}},
		{"unassign with empty AssignedTo", store.TaskPatch{AssignedTo: ptr("")}, func(t *store.Task) { t.AssignedTo = "" }},
		{"clear description", store.TaskPatch{Description: ptr("")}, func(t *store.Task) { t.Description = "" }},
		{"several fields", store.TaskPatch{Title: ptr("T"), Description: ptr("D"), Status: ptr(store.StatusDone), AssignedTo: ptr("alice")},
			func(t *store.Task) {
				t.Title, t.Description, t.Status, t.AssignedTo = "T", "D", store.StatusDone, "alice"
			}},
	}
	prev := orig
	for _, st := range steps {
		before := time.Now()
		got, err := s.UpdateTask(ctx, orig.ID, st.patch)
		noErr(t, err, st.name)
		want := prev
		st.apply(&want)
		want.Version = prev.Version + 1
		want.UpdatedAt = got.UpdatedAt
		same(t, st.name, got, want)
		if got.UpdatedAt.Before(prev.UpdatedAt) {
			t.Errorf("%s: UpdatedAt went back from %v to %v", st.name, prev.UpdatedAt, got.UpdatedAt)
		}
		wantStamp(t, st.name+": UpdatedAt", got.UpdatedAt, before, time.Now())
		read, err := s.Task(ctx, orig.ID)
		noErr(t, err, "Task")
		same(t, st.name+": read back", read, got)
		prev = got
	}
	same(t, "version after all steps", prev.Version, int64(1+len(steps)))

	t.Run("UpdatedAt never goes back", func(t *testing.T) {
		future := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
		tk := mkTask(t, s, store.Task{ID: "tsk_future", UserID: "alice", CreatedAt: future})
		got, err := s.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr("x")})
		noErr(t, err, "UpdateTask")
		if got.UpdatedAt.Before(tk.UpdatedAt) {
			t.Errorf("UpdatedAt went back from %v to %v", tk.UpdatedAt, got.UpdatedAt)
		}
	})

	t.Run("errors change nothing", func(t *testing.T) {
		_, err := s.UpdateTask(ctx, orig.ID, store.TaskPatch{Status: ptr(store.TaskStatus("DOING"))})
		wantCode(t, err, errs.BadUserInput, "UpdateTask with an unknown status")
		_, err = s.UpdateTask(ctx, orig.ID, store.TaskPatch{Title: ptr("lost"), AssignedTo: ptr("ghost")})
		wantNotFound(t, err, "ghost", "UpdateTask assigning a missing user")
		got, err := s.Task(ctx, orig.ID)
		noErr(t, err, "Task")
		same(t, "task after failed updates", got, prev)
		_, err = s.UpdateTask(ctx, "tsk_missing", store.TaskPatch{Title: ptr("x")})
		wantNotFound(t, err, "tsk_missing", "UpdateTask")
	})
}

func testDeleteTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")
	p := mkProject(t, s, "prj_p", "alice")
	tk := mkTask(t, s, store.Task{ID: "tsk_d", ProjectID: p.ID, UserID: "alice", AssignedTo: "bob", Description: "x"})
	tk, err := s.UpdateTask(ctx, tk.ID, store.TaskPatch{Status: ptr(store.StatusDone)})
	noErr(t, err, "UpdateTask")
	keep := mkTask(t, s, store.Task{ID: "tsk_keep", ProjectID: p.ID, UserID: "alice"})

	got, err := s.DeleteTask(ctx, tk.ID)
	noErr(t, err, "DeleteTask")
	same(t, "deleted task as it was", got, tk)
	_, err = s.Task(ctx, tk.ID)
	wantNotFound(t, err, tk.ID, "Task after delete")
	_, err = s.DeleteTask(ctx, tk.ID)
	wantNotFound(t, err, tk.ID, "DeleteTask again")
	ts, err := s.ProjectTasks(ctx, p.ID, wholePage())
	noErr(t, err, "ProjectTasks")
	sameList(t, "project tasks after delete", ts, []store.Task{keep})
}

func testProjectTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice")
	p := mkProject(t, s, "prj_p", "alice")
	q := mkProject(t, s, "prj_q", "alice")
	// Creation order first, id breaks ties.
	c := mkTask(t, s, store.Task{ID: "tsk_c", ProjectID: p.ID, UserID: "alice", CreatedAt: at(2)})
	b := mkTask(t, s, store.Task{ID: "tsk_b", ProjectID: p.ID, UserID: "alice", CreatedAt: at(1)})
	a := mkTask(t, s, store.Task{ID: "tsk_a", ProjectID: p.ID, UserID: "alice", CreatedAt: at(2)})
	mkTask(t, s, store.Task{ID: "tsk_q", ProjectID: q.ID, UserID: "alice", CreatedAt: at(0)})
	mkTask(t, s, store.Task{ID: "tsk_personal", UserID: "alice", CreatedAt: at(0)})

	ts, err := s.ProjectTasks(ctx, p.ID, wholePage())
	noErr(t, err, "ProjectTasks")
	sameList(t, "ProjectTasks", ts, []store.Task{b, a, c})
	empty := mkProject(t, s, "prj_empty", "alice")
	ts, err = s.ProjectTasks(ctx, empty.ID, wholePage())
	noErr(t, err, "ProjectTasks")
	sameList(t, "ProjectTasks of an empty project", ts, []store.Task{})
	_, err = s.ProjectTasks(ctx, "prj_missing", wholePage())
	wantNotFound(t, err, "prj_missing", "ProjectTasks")
}

func testVisibleTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob", "carol", "dave")
	p := mkProject(t, s, "prj_p", "alice", "bob")
	q := mkProject(t, s, "prj_q", "carol")
	n := 0
	task := func(id, owner, project, assignee string) store.Task {
		n++
		return mkTask(t, s, store.Task{ID: id, UserID: owner, ProjectID: project, AssignedTo: assignee, CreatedAt: at(10 - n)})
	}
	// Created with falling timestamps, so creation order is the reverse of
	// insertion order.
	owned := task("tsk_owned", "bob", "", "")
	assignedInP := task("tsk_assigned_in_p", "alice", p.ID, "bob")
	everything := task("tsk_everything", "bob", p.ID, "bob") // owned, assigned and in bob's project
	assigned := task("tsk_assigned", "carol", "", "bob")
	carolsOwn := task("tsk_carols", "carol", "", "")
	inQ := task("tsk_in_q", "carol", q.ID, "")
	inP := task("tsk_in_p", "alice", p.ID, "")

	tests := []struct {
		name string
		user string
		want []store.Task
	}{
		{"each reason once, ordered by creation", "bob", []store.Task{inP, assigned, everything, assignedInP, owned}},
		{"other users' tasks excluded", "carol", []store.Task{inQ, carolsOwn, assigned}},
		{"project member sees the project's tasks", "alice", []store.Task{inP, everything, assignedInP}},
		{"nothing visible", "dave", []store.Task{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.VisibleTasks(ctx, tc.user, wholePage())
			noErr(t, err, "VisibleTasks")
			sameList(t, "VisibleTasks("+tc.user+")", got, tc.want)
		})
	}

	t.Run("leaving a project hides only what came through it", func(t *testing.T) {
		_, err := s.RemoveProjectMember(ctx, p.ID, "bob")
		noErr(t, err, "RemoveProjectMember")
		got, err := s.VisibleTasks(ctx, "bob", wholePage())
		noErr(t, err, "VisibleTasks")
		sameList(t, "VisibleTasks(bob)", taskIDs(got),
			taskIDs([]store.Task{assigned, everything, assignedInP, owned}))
	})
	t.Run("missing user", func(t *testing.T) {
		_, err := s.VisibleTasks(ctx, "nobody", wholePage())
		wantNotFound(t, err, "nobody", "VisibleTasks")
	})
}

func testNotifications(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "alice", "bob")

	t.Run("create fills id and time; every field round-trips", func(t *testing.T) {
		before := time.Now()
		n, err := s.CreateNotification(ctx, store.Notification{UserID: "bob", Message: "system says hi"})
		noErr(t, err, "CreateNotification")
		wantPrefix(t, "CreateNotification", n.ID, "ntf")
		wantStamp(t, "CreatedAt", n.CreatedAt, before, time.Now())
		same(t, "returned", n, store.Notification{ID: n.ID, UserID: "bob", Message: "system says hi", CreatedAt: n.CreatedAt})
		got, err := s.Notification(ctx, n.ID)
		noErr(t, err, "Notification")
		same(t, "read back", got, n)

		in := store.Notification{ID: "ntf_full", UserID: "bob", SenderID: "alice", Message: "hi ✉", Read: true, CreatedAt: base}
		n, err = s.CreateNotification(ctx, in)
		noErr(t, err, "CreateNotification")
		same(t, "returned", n, in)
		got, err = s.Notification(ctx, in.ID)
		noErr(t, err, "Notification")
		same(t, "read back", got, in)
	})

	t.Run("listing", func(t *testing.T) {
		var ns []store.Notification // oldest first
		for i := range 5 {
			n, err := s.CreateNotification(ctx, store.Notification{ID: fmt.Sprintf("ntf_%d", i), UserID: "alice",
				SenderID: "bob", Message: fmt.Sprint("m", i), CreatedAt: at(i)})
			noErr(t, err, "CreateNotification")
			ns = append(ns, n)
		}
		// Same time as ntf_4: the id breaks the tie (newest first: greater id first).
		tie, err := s.CreateNotification(ctx, store.Notification{ID: "ntf_5", UserID: "alice", Message: "tie", CreatedAt: at(4)})
		noErr(t, err, "CreateNotification")
		ns = append(ns, tie)

		list := func(unread bool, limit int) []store.Notification {
			t.Helper()
			got, err := s.UserNotifications(ctx, "alice", unread, store.Page{Limit: limit})
			noErr(t, err, "UserNotifications")
			return got
		}
		sameList(t, "all, newest first", list(false, 100), []store.Notification{ns[5], ns[4], ns[3], ns[2], ns[1], ns[0]})
		sameList(t, "limit", list(false, 2), []store.Notification{ns[5], ns[4]})

		for _, i := range []int{4, 1} {
			got, err := s.MarkNotificationRead(ctx, ns[i].ID)
			noErr(t, err, "MarkNotificationRead")
			ns[i].Read = true
			same(t, "MarkNotificationRead returned", got, ns[i])
		}
		again, err := s.MarkNotificationRead(ctx, ns[4].ID)
		noErr(t, err, "MarkNotificationRead again")
		same(t, "marking twice", again, ns[4])
		read, err := s.Notification(ctx, ns[4].ID)
		noErr(t, err, "Notification")
		same(t, "read flag stored", read, ns[4])

		sameList(t, "unread only", list(true, 100), []store.Notification{ns[5], ns[3], ns[2], ns[0]})
		sameList(t, "unread only with limit", list(true, 2), []store.Notification{ns[5], ns[3]})
		sameList(t, "all after marking", list(false, 3), []store.Notification{ns[5], ns[4], ns[3]})

		mine, err := s.UserNotifications(ctx, "bob", false, wholePage())
		noErr(t, err, "UserNotifications")
		sameList(t, "bob's own, not the ones bob sent", ids(mine, func(n store.Notification) string { return n.UserID }),
			[]string{"bob", "bob"})
	})

	t.Run("errors", func(t *testing.T) {
		_, err := s.CreateNotification(ctx, store.Notification{UserID: "nobody", Message: "x"})
		wantNotFound(t, err, "nobody", "CreateNotification to a missing user")
		_, err = s.CreateNotification(ctx, store.Notification{UserID: "alice", SenderID: "ghost", Message: "x"})
		wantNotFound(t, err, "ghost", "CreateNotification from a missing sender")
		_, err = s.CreateNotification(ctx, store.Notification{ID: "ntf_full", UserID: "alice", Message: "x"})
		wantCode(t, err, errs.BadUserInput, "CreateNotification with a taken id")
		_, err = s.Notification(ctx, "ntf_missing")
		wantNotFound(t, err, "ntf_missing", "Notification")
		_, err = s.MarkNotificationRead(ctx, "ntf_missing")
		wantNotFound(t, err, "ntf_missing", "MarkNotificationRead")
		_, err = s.UserNotifications(ctx, "nobody", false, wholePage())
		wantNotFound(t, err, "nobody", "UserNotifications")
		for _, limit := range []int{0, -1, store.MaxPageLimit + 1} {
			_, err = s.UserNotifications(ctx, "alice", false, store.Page{Limit: limit})
			wantCode(t, err, errs.BadUserInput, fmt.Sprint("UserNotifications limit ", limit))
		}
	})
}

func testSharesTeamOrProject(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "ann", "ben", "cat", "dan", "eve")
	team, err := s.CreateTeam(ctx, store.Team{Name: "T", CreatedBy: "ann"})
	noErr(t, err, "CreateTeam")
	_, err = s.AddTeamMember(ctx, team.ID, "ben")
	noErr(t, err, "AddTeamMember")
	mkProject(t, s, "prj_p", "cat", "ann")
	mkProject(t, s, "prj_solo", "dan")
	// eve is in a team and a project, but with nobody else.
	_, err = s.CreateTeam(ctx, store.Team{Name: "Solo", CreatedBy: "eve"})
	noErr(t, err, "CreateTeam")
	mkProject(t, s, "prj_eve", "eve")

	tests := []struct {
		a, b string
		want bool
		why  string
	}{
		{"ann", "ben", true, "team only"},
		{"ben", "ann", true, "team only, other way"},
		{"ann", "cat", true, "project only"},
		{"cat", "ann", true, "project only, other way"},
		{"ben", "cat", false, "none: linked only through ann"},
		{"dan", "ann", false, "none"},
		{"eve", "dan", false, "none, though both have memberships"},
		{"ann", "ann", true, "self"},
		{"dan", "dan", true, "self"},
		{"ann", "nobody", false, "missing user"},
	}
	for _, tc := range tests {
		ok, err := s.SharesTeamOrProject(ctx, tc.a, tc.b)
		noErr(t, err, "SharesTeamOrProject")
		same(t, fmt.Sprintf("SharesTeamOrProject(%s, %s) [%s]", tc.a, tc.b, tc.why), ok, tc.want)
	}
}

// testSettings checks settings through SetSettingIfAbsent alone: the first
// call for a key stores its value and returns it, every later call returns
// the stored value, whatever it offers.
func testSettings(t *testing.T, s store.Store) {
	steps := []struct {
		key, offer, want string
	}{
		{"jwt_key", "first", "first"},
		{"jwt_key", "second", "first"},
		{"other", "x", "x"},   // keys are independent
		{"empty", "", ""},     // an empty value is stored...
		{"empty", "late", ""}, // ...and counts as set
		{"jwt_key", "", "first"},
	}
	for _, st := range steps {
		got, err := s.SetSettingIfAbsent(t.Context(), st.key, st.offer)
		noErr(t, err, "SetSettingIfAbsent")
		same(t, fmt.Sprintf("SetSettingIfAbsent(%q, %q)", st.key, st.offer), got, st.want)
	}
}

// race runs fn(i) for i in [0, n) in parallel, all released at once.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func testConcurrentSetSetting(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 8
	got := make([]string, n)
	race(n, func(i int) {
		v, err := s.SetSettingIfAbsent(ctx, "jwt_key", fmt.Sprint("value-", i))
		if err != nil {
			t.Errorf("SetSettingIfAbsent %d: %v", i, err)
		}
		got[i] = v
	})
	winner := got[0]
	if !strings.HasPrefix(winner, "value-") {
		t.Fatalf("winner %q is none of the values offered", winner)
	}
	for i, v := range got {
		if v != winner {
			t.Errorf("caller %d got %q, caller 0 got %q: first starts disagree", i, v, winner)
		}
	}
	v, err := s.SetSettingIfAbsent(ctx, "jwt_key", "late")
	noErr(t, err, "SetSettingIfAbsent")
	same(t, "stored value", v, winner)
}

// testConcurrentWriters runs writers in parallel beside a reader. Reads and
// writes interleave by construction, not by timing: the writers start only
// once the reader has completed a read, and each holds its last task back
// until the reader has completed a read that began after some task was
// created. So even when the writers would otherwise finish first (one
// shared connection for :memory:, a loaded machine), reads are checked
// amid the writes.
func testConcurrentWriters(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, each = 8, 25
	mkUsers(t, s, "alice", "reader")
	p := mkProject(t, s, "prj_p", "alice", "reader")

	var created atomic.Int64 // CreateTask calls that have returned
	firstRead := make(chan struct{})
	readAmidWrites := make(chan struct{})
	stop := make(chan struct{})
	readerDone := make(chan struct{}) // also releases the writers if the reader fails
	go func() {
		defer close(readerDone)
		reads, seen := 0, 0 // seen: tasks the previous read returned
		amid := false
		for {
			select {
			case <-stop:
				return
			default:
			}
			began := int(created.Load())
			vis, err := s.VisibleTasks(ctx, "reader", wholePage())
			if err != nil {
				t.Errorf("VisibleTasks during writes: %v", err)
				return
			}
			pts, err := s.ProjectTasks(ctx, p.ID, wholePage())
			if err != nil {
				t.Errorf("ProjectTasks during writes: %v", err)
				return
			}
			// The reader sees exactly the project's tasks; tasks are only
			// added, and a task created before a read began is in it.
			if n := len(vis); n < began || n < seen || n > len(pts) || len(pts) > writers*each {
				t.Errorf("read %d: VisibleTasks %d then ProjectTasks %d tasks, after %d created and %d read before",
					reads, n, len(pts), began, seen)
				return
			}
			// Each task is seen as created or as updated, never in between.
			for _, tk := range append(vis, pts...) {
				if (tk.Version != 1 || tk.Status != store.StatusTodo) && (tk.Version != 2 || tk.Status != store.StatusDone) {
					t.Errorf("read %d: task %s at version %d, status %s", reads, tk.ID, tk.Version, tk.Status)
					return
				}
			}
			seen = len(pts)
			reads++
			if reads == 1 {
				close(firstRead)
			}
			if began > 0 && !amid {
				amid = true
				close(readAmidWrites)
			}
		}
	}()
	wait := func(c <-chan struct{}) {
		select {
		case <-c:
		case <-readerDone: // the reader failed and said why
		}
	}
	wait(firstRead)

	race(writers, func(w int) {
		for i := range each {
			if i == each-1 {
				wait(readAmidWrites)
			}
			tk, err := s.CreateTask(ctx, store.Task{Title: fmt.Sprintf("w%d-%d", w, i), ProjectID: p.ID, UserID: "alice"})
			if err != nil {
				t.Errorf("writer %d: CreateTask %d: %v", w, i, err)
				return
			}
			created.Add(1)
			got, err := s.UpdateTask(ctx, tk.ID, store.TaskPatch{Status: ptr(store.StatusDone)})
			if err != nil {
				t.Errorf("writer %d: UpdateTask %d: %v", w, i, err)
				return
			}
			if got.Version != 2 {
				t.Errorf("writer %d: version %d after one update, want 2", w, got.Version)
			}
		}
	})
	close(stop)
	<-readerDone

	ts, err := s.ProjectTasks(ctx, p.ID, wholePage())
	noErr(t, err, "ProjectTasks")
	if len(ts) != writers*each {
		t.Fatalf("%d tasks stored, want %d", len(ts), writers*each)
	}
	titles := make(map[string]bool, len(ts))
	for _, tk := range ts {
		if tk.Version != 2 || tk.Status != store.StatusDone {
			t.Errorf("task %s: version %d status %s, want 2 DONE", tk.ID, tk.Version, tk.Status)
		}
		titles[tk.Title] = true
	}
	if len(titles) != writers*each {
		t.Errorf("%d distinct titles, want %d", len(titles), writers*each)
	}
}

func testConcurrentUpdatesOfOneTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, each = 8, 25
	mkUser(t, s, "alice")
	tk := mkTask(t, s, store.Task{ID: "tsk_hot", UserID: "alice"})

	var mu sync.Mutex
	seen := make(map[int64]int) // version -> writer that got it
	race(writers, func(w int) {
		for i := range each {
			got, err := s.UpdateTask(ctx, tk.ID, store.TaskPatch{Title: ptr(fmt.Sprintf("w%d-%d", w, i))})
			if err != nil {
				t.Errorf("writer %d: UpdateTask %d: %v", w, i, err)
				return
			}
			mu.Lock()
			if prev, dup := seen[got.Version]; dup {
				t.Errorf("version %d returned to writers %d and %d: an update was lost", got.Version, prev, w)
			}
			seen[got.Version] = w
			mu.Unlock()
		}
	})
	final, err := s.Task(ctx, tk.ID)
	noErr(t, err, "Task")
	same(t, "final version", final.Version, int64(1+writers*each))
	for v := int64(2); v <= 1+writers*each; v++ {
		if _, ok := seen[v]; !ok {
			t.Errorf("no update returned version %d", v)
		}
	}
}
