package service

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// Event type names (GraphQL EventType values).
const (
	TaskCreated          = "TASK_CREATED"
	TaskUpdated          = "TASK_UPDATED"
	TaskDeleted          = "TASK_DELETED"
	TaskAssigned         = "TASK_ASSIGNED"
	ProjectCreated       = "PROJECT_CREATED"
	ProjectUpdated       = "PROJECT_UPDATED"
	ProjectDeleted       = "PROJECT_DELETED"
	ProjectMemberAdded   = "PROJECT_MEMBER_ADDED"
	ProjectMemberRemoved = "PROJECT_MEMBER_REMOVED"
	TeamMemberAdded      = "TEAM_MEMBER_ADDED"
	NotificationSent     = "NOTIFICATION_SENT"
	SystemUpdate         = "SYSTEM_UPDATE"
)

// CreateTeam creates a team with the caller as creator and first member.
func (s *Service) CreateTeam(ctx context.Context, name string) (store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Team{}, err
	}
	if name, err = text("name", name, true, MaxNameLen); err != nil {
		return store.Team{}, err
	}
	return s.store.CreateTeam(ctx, store.Team{Name: name, CreatedBy: v.UserID})
}

// Team returns a team the caller is a member of (admins: any team).
func (s *Service) Team(ctx context.Context, teamID string) (store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Team{}, err
	}
	if err := id("id", teamID); err != nil {
		return store.Team{}, err
	}
	t, err := s.store.Team(ctx, teamID)
	if err != nil {
		return store.Team{}, err
	}
	if v.Admin {
		return t, nil
	}
	ok, err := s.store.IsTeamMember(ctx, teamID, v.UserID)
	if err != nil {
		return store.Team{}, err
	}
	if !ok {
		return store.Team{}, errs.E(errs.Forbidden, "you are not a member of team %q", teamID)
	}
	return t, nil
}

// Teams lists the caller's teams.
func (s *Service) Teams(ctx context.Context) ([]store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.UserTeams(ctx, v.UserID)
}

// AddTeamMember adds a user to a team: the team's creator or an admin may.
func (s *Service) AddTeamMember(ctx context.Context, teamID, userID string) (store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Team{}, err
	}
	if err := id("teamId", teamID); err != nil {
		return store.Team{}, err
	}
	if err := id("userId", userID); err != nil {
		return store.Team{}, err
	}
	t, err := s.store.Team(ctx, teamID)
	if err != nil {
		return store.Team{}, err
	}
	if t.CreatedBy != v.UserID && !v.Admin {
		return store.Team{}, errs.E(errs.Forbidden, "only the team's creator or an admin adds members")
	}
	u, err := s.store.User(ctx, userID)
	if err != nil {
		return store.Team{}, err
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		added, err := s.store.AddTeamMember(ctx, teamID, userID)
		if err != nil || !added {
			return nil, err
		}
		ev := newEvent(TeamMemberAdded, store.Now(), EventData{Team: &t, Member: &u},
			&realtime.Control{Op: realtime.Join, UserID: userID, Room: realtime.RoomTeam(teamID)},
			realtime.RoomTeam(teamID))
		return []*realtime.Event{ev}, nil
	})
	return t, err
}
