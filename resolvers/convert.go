package resolvers

import (
	"github.com/taskpulse/taskpulse/graph/model"
	"github.com/taskpulse/taskpulse/realtime"
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

func toUsers(us []store.User) []*model.User {
	out := make([]*model.User, len(us))
	for i, u := range us {
		out[i] = toUser(u)
	}
	return out
}

func toTeam(t store.Team) *model.Team {
	return &model.Team{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy}
}

func toTeams(ts []store.Team) []*model.Team {
	out := make([]*model.Team, len(ts))
	for i, t := range ts {
		out[i] = toTeam(t)
	}
	return out
}

func toProject(p store.Project) *model.Project {
	return &model.Project{ID: p.ID, Name: p.Name, OwnerID: p.OwnerID, TeamID: opt(p.TeamID)}
}

func toProjects(ps []store.Project) []*model.Project {
	out := make([]*model.Project, len(ps))
	for i, p := range ps {
		out[i] = toProject(p)
	}
	return out
}

func toTask(t store.Task) *model.Task {
	return &model.Task{
		ID: t.ID, Title: t.Title, Description: opt(t.Description), Status: model.TaskStatus(t.Status),
		ProjectID: opt(t.ProjectID), UserID: t.UserID, AssignedTo: opt(t.AssignedTo),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func toTasks(ts []store.Task) []*model.Task {
	out := make([]*model.Task, len(ts))
	for i, t := range ts {
		out[i] = toTask(t)
	}
	return out
}

func toNotification(n store.Notification) *model.Notification {
	return &model.Notification{ID: n.ID, UserID: n.UserID, Message: n.Message, Read: n.Read, CreatedAt: n.CreatedAt, SenderID: opt(n.SenderID)}
}

func toNotifications(ns []store.Notification) []*model.Notification {
	out := make([]*model.Notification, len(ns))
	for i, n := range ns {
		out[i] = toNotification(n)
	}
	return out
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

// out converts a service result, passing its error through.
func out[T, M any](v T, err error, conv func(T) M) (M, error) {
	if err != nil {
		var zero M
		return zero, err
	}
	return conv(v), nil
}
