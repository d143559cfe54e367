package service

import (
	"context"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// The access rules the use cases (Service, in a unit of work) and the
// subscriptions (Subscriptions, in a read snapshot) both decide by: each is
// one function over store.Queries, so the two always agree.

// loadProject validates the id and loads the project.
func loadProject(ctx context.Context, q store.Queries, projectID string) (store.Project, error) {
	if err := id("projectId", projectID); err != nil {
		return store.Project{}, err
	}
	return q.Project(ctx, projectID)
}

// memberProject loads a project and checks the viewer may read it: a
// member, or an admin.
func memberProject(ctx context.Context, q store.Queries, v auth.Viewer, projectID string) (store.Project, error) {
	return memberOf(ctx, v, "project", "projectId", projectID, q.Project, q.IsProjectMember)
}

// memberTeam loads a team and checks the viewer may read it: a member, or
// an admin.
func memberTeam(ctx context.Context, q store.Queries, v auth.Viewer, teamID string) (store.Team, error) {
	return memberOf(ctx, v, "team", "id", teamID, q.Team, q.IsTeamMember)
}

// memberOf validates the id (the argument field), loads the project or
// team (kind) and lets a member of it or an admin read it; anyone else is
// FORBIDDEN. An admin's membership is not read: in a unit of work that
// read locks the membership (store/postgres).
func memberOf[T any](ctx context.Context, v auth.Viewer, kind, field, objID string,
	load func(ctx context.Context, objID string) (T, error),
	isMember func(ctx context.Context, objID, userID string) (bool, error)) (T, error) {
	var none T
	if err := id(field, objID); err != nil {
		return none, err
	}
	obj, err := load(ctx, objID)
	if err != nil {
		return none, err
	}
	if v.Admin {
		return obj, nil
	}
	ok, err := isMember(ctx, objID, v.UserID)
	if err != nil {
		return none, err
	}
	if !ok {
		return none, errs.E(errs.Forbidden, "you are not a member of %s %q", kind, objID)
	}
	return obj, nil
}

// noSuchUser is the one answer for a user id the caller may not see,
// whether or not a user has it. It does not repeat the id, so the answers
// for two ids are the same bytes (each operation names one user).
func noSuchUser() error {
	return errs.E(errs.NotFound, "no user with this id that you can see")
}

// visibleUser loads a user the viewer may name: themself, someone they
// share a team or project with, or anyone when everyone is set (admins;
// services for notifications). A user the viewer may not see and an id
// nobody has get the same error after the same queries: the sharing check
// runs first, on ids alone, and the user is read only once it passed.
func visibleUser(ctx context.Context, q store.Queries, v auth.Viewer, userID string, everyone bool) (store.User, error) {
	if !everyone {
		ok, err := q.SharesTeamOrProject(ctx, v.UserID, userID)
		if err != nil {
			return store.User{}, err
		}
		if !ok {
			return store.User{}, noSuchUser()
		}
	}
	u, err := q.User(ctx, userID)
	if errs.Is(err, errs.NotFound) {
		return store.User{}, noSuchUser()
	}
	return u, err
}

// presenceAccess is how a viewer may follow a user's presence.
type presenceAccess uint8

const (
	// presenceSelf: the viewer's own.
	presenceSelf presenceAccess = iota + 1
	// presenceShared: through the teams and projects they share, as long
	// as they share one (the subscription follows the viewer's
	// memberships).
	presenceShared
	// presenceByAdmin: an admin who shares nothing with the user, by admin
	// rights alone.
	presenceByAdmin
)

// presenceAccessTo decides userActivity(userID) for v. A user v shares no
// team or project with is NOT_FOUND, exactly as an id nobody has (same
// error, same queries): presence must not tell whether an id exists.
// Admins follow anyone.
func presenceAccessTo(ctx context.Context, q store.Queries, v auth.Viewer, userID string) (presenceAccess, error) {
	if err := id("userId", userID); err != nil {
		return 0, err
	}
	if userID == v.UserID {
		return presenceSelf, nil
	}
	shares, err := q.SharesTeamOrProject(ctx, v.UserID, userID)
	if err != nil {
		return 0, err
	}
	if !shares && !v.Admin {
		return 0, noSuchUser()
	}
	if _, err := visibleUser(ctx, q, v, userID, true); err != nil {
		return 0, err
	}
	if shares {
		return presenceShared, nil
	}
	return presenceByAdmin, nil
}

// memberships are every team and every project of userID, teams page by
// page (presence goes to all of them, however many).
func memberships(ctx context.Context, q store.Queries, userID string) ([]store.Team, []store.Project, error) {
	var teams []store.Team
	page := store.Page{Limit: store.MaxPageLimit}
	for {
		ts, err := q.UserTeams(ctx, userID, page)
		if err != nil {
			return nil, nil, err
		}
		teams = append(teams, ts...)
		if len(ts) < page.Limit {
			break
		}
		page.After = ts[len(ts)-1].ID
	}
	projects, err := q.AllUserProjects(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	return teams, projects, nil
}

// membershipRooms are the rooms of teams and projects: for a user's
// memberships, the rooms of whose members share one with them (presence's
// audience).
func membershipRooms(teams []store.Team, projects []store.Project) []string {
	rooms := make([]string, 0, len(teams)+len(projects))
	for _, t := range teams {
		rooms = append(rooms, realtime.RoomTeam(t.ID))
	}
	for _, p := range projects {
		rooms = append(rooms, realtime.RoomProject(p.ID))
	}
	return rooms
}
