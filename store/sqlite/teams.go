package sqlite

import (
	"context"

	"github.com/taskpulse/taskpulse/store"
)

const teamCols = `t.id, t.name, t.created_by, t.created_at`

const (
	insertTeamQuery       = `INSERT INTO teams (id, name, created_by, created_at) VALUES (?, ?, ?, ?)`
	insertTeamMemberQuery = `INSERT INTO team_members (team_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`
	getTeamQuery          = `SELECT ` + teamCols + ` FROM teams t WHERE t.id = ?`
	isTeamMemberQuery     = `SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = ? AND user_id = ?)`
	teamMembersQuery      = `SELECT ` + userCols + `
		FROM team_members m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ? ORDER BY u.id`
	userTeamsQuery = `SELECT ` + teamCols + `
		FROM team_members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = ? ORDER BY t.id`
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

// AddTeamMember makes the user a member; added is false when they already
// were one.
func (s *Store) AddTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	return s.addMember(ctx, "add team member", kindTeam, teamID, userID, insertTeamMemberQuery)
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

// UserTeams lists the teams the user is a member of, ordered by id.
func (s *Store) UserTeams(ctx context.Context, userID string) ([]store.Team, error) {
	return listUnder(ctx, s, "list user teams", kindUser, userID, scanTeam, userTeamsQuery, userID)
}
