package sqlite

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const teamCols = `t.id, t.name, t.created_by, t.created_at`

const (
	insertTeamQuery       = `INSERT INTO teams (id, name, created_by, created_at) VALUES (?, ?, ?, ?)`
	insertTeamMemberQuery = `INSERT INTO team_members (team_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`
	deleteTeamMemberQuery = `DELETE FROM team_members WHERE team_id = ? AND user_id = ?`
	otherTeamMembersQuery = `SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = ? AND user_id <> ?)`
	getTeamQuery          = `SELECT ` + teamCols + ` FROM teams t WHERE t.id = ?`
	isTeamMemberQuery     = `SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = ? AND user_id = ?)`
	teamMembersQuery      = `SELECT ` + userCols + `
		FROM team_members m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ? ORDER BY u.id`
	// The pages of a user's teams (see paging.go), in order from
	// team_members_by_user. Parameters: user, limit.
	userTeamsQuery = `SELECT ` + teamCols + `
		FROM team_members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = ? ORDER BY m.team_id LIMIT ?`
	// The key is the After team's id if the user is a member.
	// Parameters: user, user, after, limit.
	userTeamsAfterQuery = `SELECT ` + teamCols + `
		FROM team_members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = ?
			AND m.team_id > (SELECT k.team_id FROM team_members k WHERE k.user_id = ? AND k.team_id = ?)
		ORDER BY m.team_id LIMIT ?`
	// sharesTeamQuery walks from a's teams (by-user index) to b's membership
	// (primary key). Parameters: b, a.
	sharesTeamQuery = `SELECT EXISTS (SELECT 1 FROM team_members x
		JOIN team_members y ON y.team_id = x.team_id AND y.user_id = ?
		WHERE x.user_id = ?)`
)

func scanTeam(sc scanner) (store.Team, error) {
	var t store.Team
	var created int64
	if err := sc.Scan(&t.ID, &t.Name, &t.CreatedBy, &created); err != nil {
		return store.Team{}, err
	}
	t.CreatedAt = fromMicros(created)
	return t, nil
}

// CreateTeam stores the team and makes its creator a member, in one
// transaction.
func (s *Store) CreateTeam(ctx context.Context, t store.Team) (store.Team, error) {
	if t.ID == "" {
		t.ID = store.NewID("team")
	}
	t.CreatedAt = stamp(t.CreatedAt)
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindUser, t.CreatedBy); err != nil {
			return err
		}
		if err := mustBeNew(ctx, tx, kindTeam, t.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertTeamQuery, t.ID, t.Name, t.CreatedBy, micros(t.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertTeamMemberQuery, t.ID, t.CreatedBy)
		return err
	})
	if err != nil {
		return store.Team{}, wrap("create team", err)
	}
	return t, nil
}

// Team returns the team with the id.
func (s *Store) Team(ctx context.Context, id string) (store.Team, error) {
	t, err := getByID(ctx, s.rq(), kindTeam, getTeamQuery, scanTeam, id)
	return t, wrap("get team", err)
}

// AddTeamMember makes the user a member and drops their pending invitation,
// in one transaction; added is false when they already were a member.
func (s *Store) AddTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	var added bool
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindTeam, teamID); err != nil {
			return err
		}
		if err := mustExist(ctx, tx, kindUser, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, deleteInvitationQuery, teamID, userID); err != nil {
			return err
		}
		var err error
		added, err = changedOne(ctx, tx, insertTeamMemberQuery, teamID, userID)
		return err
	})
	if err != nil {
		return false, wrap("add team member", err)
	}
	return added, nil
}

// RemoveTeamMember ends a membership or withdraws an invitation, in one
// transaction. A user who is neither (or does not exist) changes nothing.
// The creator leaves last: while other members remain it is BadUserInput,
// and their leaving takes the team's pending invitations with it, so nobody
// joins a team its creator abandoned.
func (s *Store) RemoveTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	var removed bool
	err := s.write(ctx, func(tx queryer) error {
		t, err := getByID(ctx, tx, kindTeam, getTeamQuery, scanTeam, teamID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, deleteInvitationQuery, teamID, userID); err != nil {
			return err
		}
		creator := userID == t.CreatedBy
		if creator {
			member, err := queryBool(ctx, tx, isTeamMemberQuery, teamID, userID)
			if err != nil {
				return err
			}
			others, err := queryBool(ctx, tx, otherTeamMembersQuery, teamID, userID)
			if err != nil {
				return err
			}
			if member && others {
				return errs.E(errs.BadUserInput, "the creator of team %q leaves it last: remove its other members first", teamID)
			}
		}
		if removed, err = changedOne(ctx, tx, deleteTeamMemberQuery, teamID, userID); err != nil || !removed || !creator {
			return err
		}
		_, err = tx.ExecContext(ctx, deleteTeamInvitationsQuery, teamID)
		return err
	})
	if err != nil {
		return false, wrap("remove team member", err)
	}
	return removed, nil
}

// TeamMembers lists the team's members ordered by user id.
func (s *Store) TeamMembers(ctx context.Context, teamID string) ([]store.User, error) {
	return listUnder(ctx, s, "list team members", kindTeam, teamID, scanUser, teamMembersQuery, teamID)
}

// IsTeamMember reports whether the user is a member of the team; a missing
// team or user is simply not a membership.
func (s *Store) IsTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	ok, err := queryBool(ctx, s.rq(), isTeamMemberQuery, teamID, userID)
	return ok, wrap("check team member", err)
}

// UserTeams lists one page of the teams the user is a member of, ordered
// by id.
func (s *Store) UserTeams(ctx context.Context, userID string, p store.Page) ([]store.Team, error) {
	return listPage(ctx, s, "list user teams", kindUser, userID, p, scanTeam,
		stmt{userTeamsQuery, []any{userID, p.Limit}},
		stmt{userTeamsAfterQuery, []any{userID, userID, p.After, p.Limit}},
		stmt{isTeamMemberQuery, []any{p.After, userID}})
}

// SharesTeam reports whether a and b are members of a common team; everyone
// shares with themself.
func (s *Store) SharesTeam(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	ok, err := queryBool(ctx, s.rq(), sharesTeamQuery, b, a)
	return ok, wrap("check shared team", err)
}
