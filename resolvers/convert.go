package resolvers

import (
	"context"

	"github.com/taskpulse/taskpulse/graph/model"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
)

// opt maps the store's "" = none to GraphQL null.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func val(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toUser(u store.User) *model.User {
	return &model.User{ID: u.ID, Name: u.Name, Email: opt(u.Email)}
}

// toEventUser is a user as an event's snapshot shows them.
func toEventUser(u service.EventUser) *model.User {
	return &model.User{ID: u.ID, Name: u.Name, Email: opt(u.Email), Online: u.Online}
}

// toProjectAt is a project as an event shows it: with the members it had
// at commit, which Project.members returns when rendering. (A team event's
// converter does the same with Snapshot.TeamMembers for Team.members.)
func toProjectAt(p store.Project, members []service.EventUser) *model.Project {
	m := toProject(p)
	m.Members = snapshotUsers(members)
	return m
}

// snapshotUsers converts a snapshot's users, never nil: a rendering
// resolves a list from it, even an empty one, and never from the store.
func snapshotUsers(us []service.EventUser) []*model.User {
	out := make([]*model.User, len(us))
	for i, u := range us {
		out[i] = toEventUser(u)
	}
	return out
}

// given returns the members a parent came with: the snapshot's list when
// ctx renders an event (see stream), so a nested field resolves from the
// event, never from the store (what a recipient sees is what was there at
// commit); or the members a mutation answered with (toProjectWith). ok is
// false otherwise: a query reads live data.
func given(ctx context.Context, members []*model.User) (_ []*model.User, ok bool) {
	if _, rendering := realtime.RenderFrom(ctx); !rendering {
		return members, members != nil
	}
	if members == nil {
		members = []*model.User{}
	}
	return members, true
}

// toProjectWith is a project with the members a mutation read in its unit
// of work (removeProjectMember: a member who left sees who remains,
// though they may no longer read the project).
func toProjectWith(p store.Project, members []store.User) *model.Project {
	m := toProject(p)
	m.Members = each(toUser)(members)
	return m
}

// toTeamWith is toProjectWith's counterpart for removeTeamMember.
func toTeamWith(t store.Team, members []store.User) *model.Team {
	m := toTeam(t)
	m.Members = each(toUser)(members)
	return m
}

func toTeam(t store.Team) *model.Team {
	return &model.Team{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy}
}

// toTeamAt is a team as an event shows it: with the members it had at
// commit, which Team.members returns when rendering.
func toTeamAt(t store.Team, members []service.EventUser) *model.Team {
	m := toTeam(t)
	m.Members = snapshotUsers(members)
	return m
}

// toPresence is a presence state; an OFFLINE user shows no page, task or
// project (their state has none).
func toPresence(p presence.State) *model.Presence {
	return &model.Presence{
		UserID: p.UserID, Status: model.PresenceStatus(p.Status), LastSeen: p.LastSeen,
		CurrentPage: opt(p.CurrentPage), ActiveTask: opt(p.ActiveTask), ActiveProject: opt(p.ActiveProject),
	}
}

// presenceStatus is an input status as the service takes it.
func presenceStatus(s *model.PresenceStatus) *string {
	if s == nil {
		return nil
	}
	v := string(*s)
	return &v
}

func toInvitation(i store.Invitation) *model.Invitation {
	return &model.Invitation{TeamID: i.TeamID, TeamName: i.TeamName, InvitedBy: i.InvitedBy, CreatedAt: i.CreatedAt}
}

func toProject(p store.Project) *model.Project {
	return &model.Project{ID: p.ID, Name: p.Name, OwnerID: p.OwnerID, TeamID: opt(p.TeamID)}
}

func toTask(t store.Task) *model.Task {
	return &model.Task{
		ID: t.ID, Title: t.Title, Description: opt(t.Description), Status: model.TaskStatus(t.Status),
		ProjectID: opt(t.ProjectID), UserID: t.UserID, AssignedTo: opt(t.AssignedTo),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func toNotification(n store.Notification) *model.Notification {
	return &model.Notification{ID: n.ID, UserID: n.UserID, Message: n.Message, Read: n.Read, CreatedAt: n.CreatedAt, SenderID: opt(n.SenderID)}
}

func toConnections(cs []realtime.ConnInfo) []*model.Connection {
	out := make([]*model.Connection, len(cs))
	for i, c := range cs {
		out[i] = &model.Connection{
			ID: c.ID, UserID: c.UserID, ConnectedAt: c.ConnectedAt, LastActivity: c.LastActivity,
			UserAgent: opt(c.UserAgent), IP: opt(c.IP), Transport: c.Transport,
		}
	}
	return out
}

// each converts every element of a list.
func each[T, M any](f func(T) M) func([]T) []M {
	return func(xs []T) []M {
		out := make([]M, len(xs))
		for i, x := range xs {
			out[i] = f(x)
		}
		return out
	}
}

// out converts a service result, passing its error through.
func out[T, M any](v T, err error, conv func(T) M) (M, error) {
	if err != nil {
		var zero M
		return zero, err
	}
	return conv(v), nil
}
