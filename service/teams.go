package service

import (
	"context"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
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
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if t, err = tx.CreateTeam(ctx, store.Team{Name: name, CreatedBy: v.UserID}); err != nil {
			return nil, err
		}
		u, err := tx.User(ctx, v.UserID)
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
	return memberTeam(ctx, s.store, v, teamID)
}

// TeamMembers lists the members of a team the caller may read
// (Team.members), ordered by id.
func (s *Service) TeamMembers(ctx context.Context, teamID string) ([]store.User, error) {
	if _, err := s.Team(ctx, teamID); err != nil {
		return nil, err
	}
	return s.store.TeamMembers(ctx, teamID)
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
func manages(ctx context.Context, q store.Queries, v auth.Viewer, t store.Team) (bool, error) {
	if v.Admin {
		return true, nil
	}
	if t.CreatedBy != v.UserID {
		return false, nil
	}
	return q.IsTeamMember(ctx, t.ID, v.UserID)
}

// checkMembershipArgs checks the ids of adding or removing userID on teamID.
func checkMembershipArgs(teamID, userID string) error {
	if err := id("teamId", teamID); err != nil {
		return err
	}
	return id("userId", userID)
}

// AddTeamMember is an admin's immediate add, or the team creator's
// invitation (see invite). The answer is the team either way.
func (s *Service) AddTeamMember(ctx context.Context, teamID, userID string) (store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Team{}, err
	}
	if err := checkMembershipArgs(teamID, userID); err != nil {
		return store.Team{}, err
	}
	var t store.Team
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if t, err = tx.Team(ctx, teamID); err != nil {
			return nil, err
		}
		ok, err := manages(ctx, tx, v, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errs.E(errs.Forbidden, "only the team's creator invites members (an admin adds them)")
		}
		if !v.Admin {
			return s.invite(ctx, tx, v, t, userID)
		}
		u, err := visibleUser(ctx, tx, v, userID, true)
		if err != nil {
			return nil, err
		}
		added, err := tx.AddTeamMember(ctx, teamID, userID)
		if err != nil || !added {
			return nil, err
		}
		return []*realtime.Event{teamMemberEvent(TeamMemberAdded, realtime.Join, t, u)}, nil
	})
	if err != nil {
		return store.Team{}, err
	}
	return t, nil
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
//
// The answer also holds the team's members as the change left them, read
// in its unit of work: a member who just left may no longer read them
// (TeamMembers) but sees them in the answer, as before they left.
func (s *Service) RemoveTeamMember(ctx context.Context, teamID, userID string) (store.Team, []store.User, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Team{}, nil, err
	}
	if err := checkMembershipArgs(teamID, userID); err != nil {
		return store.Team{}, nil, err
	}
	var (
		t       store.Team
		members []store.User
	)
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if t, err = tx.Team(ctx, teamID); err != nil {
			return nil, err
		}
		ok, err := manages(ctx, tx, v, t)
		if err == nil && !ok && userID == v.UserID {
			ok, err = tx.IsTeamMember(ctx, teamID, v.UserID)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errs.E(errs.Forbidden, "only the team's creator or an admin removes others; members may leave team %q", teamID)
		}
		removed, err := tx.RemoveTeamMember(ctx, teamID, userID)
		if err != nil {
			return nil, err
		}
		var events []*realtime.Event
		if removed {
			u, err := tx.User(ctx, userID)
			if err != nil {
				return nil, err
			}
			events = append(events, teamMemberEvent(TeamMemberRemoved, realtime.Leave, t, u))
		}
		members, err = tx.TeamMembers(ctx, teamID)
		return events, err
	})
	if err != nil {
		return store.Team{}, nil, err
	}
	return t, members, nil
}
