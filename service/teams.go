package service

import (
	"context"

	"github.com/taskpulse/taskpulse/auth"
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
	TeamMemberRemoved    = "TEAM_MEMBER_REMOVED"
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
	// The creator is the first member: their TEAM_MEMBER_ADDED carries the
	// Join that adds the team's room to their open subscriptions (the
	// presence of members who join later reaches their userActivity).
	var t store.Team
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		var err error
		if t, err = s.store.CreateTeam(ctx, store.Team{Name: name, CreatedBy: v.UserID}); err != nil {
			return nil, err
		}
		u, err := s.store.User(ctx, v.UserID)
		if err != nil {
			return nil, err
		}
		return []*realtime.Event{teamMemberEvent(TeamMemberAdded, realtime.Join, t, u)}, nil
	})
	return t, err
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

// Teams lists one page of the caller's teams, by id.
func (s *Service) Teams(ctx context.Context, args PageArgs) ([]store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	page, err := args.page("first")
	if err != nil {
		return nil, err
	}
	return s.store.UserTeams(ctx, v.UserID, page)
}

// manages reports whether the viewer manages the team's membership: an
// admin, or its creator while still a member (a creator who left has
// abandoned it).
func (s *Service) manages(ctx context.Context, v auth.Viewer, t store.Team) (bool, error) {
	if v.Admin {
		return true, nil
	}
	if t.CreatedBy != v.UserID {
		return false, nil
	}
	return s.store.IsTeamMember(ctx, t.ID, v.UserID)
}

// membershipChange checks the arguments of adding or removing userID on
// teamID and loads the team, and says whether the caller manages it.
func (s *Service) membershipChange(ctx context.Context, teamID, userID string) (auth.Viewer, store.Team, bool, error) {
	v, err := viewer(ctx)
	if err != nil {
		return auth.Viewer{}, store.Team{}, false, err
	}
	if err := id("teamId", teamID); err != nil {
		return auth.Viewer{}, store.Team{}, false, err
	}
	if err := id("userId", userID); err != nil {
		return auth.Viewer{}, store.Team{}, false, err
	}
	t, err := s.store.Team(ctx, teamID)
	if err != nil {
		return auth.Viewer{}, store.Team{}, false, err
	}
	ok, err := s.manages(ctx, v, t)
	return v, t, ok, err
}

// AddTeamMember is an admin's immediate add, or the team creator's
// invitation (see invite). The answer is the team either way.
func (s *Service) AddTeamMember(ctx context.Context, teamID, userID string) (store.Team, error) {
	v, t, ok, err := s.membershipChange(ctx, teamID, userID)
	if err != nil {
		return store.Team{}, err
	}
	if !ok {
		return store.Team{}, errs.E(errs.Forbidden, "only the team's creator invites members (an admin adds them)")
	}
	if !v.Admin {
		return t, s.invite(ctx, v, t, userID)
	}
	u, err := s.visibleUser(ctx, v, userID, true)
	if err != nil {
		return store.Team{}, err
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		added, err := s.store.AddTeamMember(ctx, teamID, userID)
		if err != nil || !added {
			return nil, err
		}
		return []*realtime.Event{teamMemberEvent(TeamMemberAdded, realtime.Join, t, u)}, nil
	})
	return t, err
}

// teamMemberEvent is TEAM_MEMBER_ADDED (with Join) or TEAM_MEMBER_REMOVED
// (with Leave) of u, addressed to the team's room.
func teamMemberEvent(typ string, op realtime.ControlOp, t store.Team, u store.User) *realtime.Event {
	return newEvent(typ, store.Now(), EventData{Team: &t, Member: &u},
		&realtime.Control{Op: op, UserID: u.ID, Room: realtime.RoomTeam(t.ID)},
		realtime.RoomTeam(t.ID))
}

// RemoveTeamMember ends a membership: the team's creator (while a member)
// or an admin removes anyone, and withdraws a pending invitation the same
// way; any member removes themself (leaves). The creator leaves last
// (BAD_USER_INPUT while others remain). A user who is neither a member nor
// invited, or does not exist, changes nothing: the same answer, the team.
// TEAM_MEMBER_REMOVED goes to the team's room, and its Leave takes the
// room from the leaver's open subscriptions.
func (s *Service) RemoveTeamMember(ctx context.Context, teamID, userID string) (store.Team, error) {
	v, t, ok, err := s.membershipChange(ctx, teamID, userID)
	if err != nil {
		return store.Team{}, err
	}
	if !ok && userID == v.UserID {
		ok, err = s.store.IsTeamMember(ctx, teamID, v.UserID)
		if err != nil {
			return store.Team{}, err
		}
	}
	if !ok {
		return store.Team{}, errs.E(errs.Forbidden, "only the team's creator or an admin removes others; members may leave team %q", teamID)
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		removed, err := s.store.RemoveTeamMember(ctx, teamID, userID)
		if err != nil || !removed {
			return nil, err
		}
		u, err := s.store.User(ctx, userID)
		if err != nil {
			return nil, err
		}
		return []*realtime.Event{teamMemberEvent(TeamMemberRemoved, realtime.Leave, t, u)}, nil
	})
	return t, err
}
