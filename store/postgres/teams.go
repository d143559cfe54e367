package postgres

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const teamCols = `t.id, t.name, t.created_by, t.created_at`

const (
	insertTeamQuery = `INSERT INTO teams (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`
	insertTeamMemberQuery = `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	deleteTeamMemberQuery = `DELETE FROM team_members WHERE team_id = $1 AND user_id = $2`
	otherTeamMembersQuery = `SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = $1 AND user_id <> $2)`
	getTeamQuery          = `SELECT ` + teamCols + ` FROM teams t WHERE t.id = $1`
	// lockTeamQuery reads a team and takes its row lock: every change of
	// the team's members or invitations holds it, so they take turns per
	// team. FOR NO KEY UPDATE leaves foreign-key checks (FOR KEY SHARE) of
	// rows that reference the team free.
	lockTeamQuery     = getTeamQuery + ` FOR NO KEY UPDATE`
	isTeamMemberQuery = `SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2)`
	teamMembersQuery  = `SELECT ` + userCols + `
		FROM team_members m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = $1 ORDER BY u.id`
	// The pages of a user's teams (see paging.go), in order from
	// team_members_by_user. Parameters: user, limit.
	userTeamsQuery = `SELECT ` + teamCols + `
		FROM team_members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = $1 ORDER BY m.team_id LIMIT $2`
	// The key is the After team's id if the user is a member. Parameters:
	// user, limit, after.
	userTeamsAfterQuery = `SELECT ` + teamCols + `
		FROM team_members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = $1
			AND m.team_id > (SELECT k.team_id FROM team_members k WHERE k.user_id = $1 AND k.team_id = $3)
		ORDER BY m.team_id LIMIT $2`
	// sharesTeamQuery walks from a's teams (by-user index) to b's membership
	// (primary key). Parameters: a, b.
	sharesTeamQuery = `SELECT EXISTS (SELECT 1 FROM team_members x
		JOIN team_members y ON y.team_id = x.team_id AND y.user_id = $2
		WHERE x.user_id = $1)`
)

func scanTeam(sc scanner) (store.Team, error) {
	var t store.Team
	if err := sc.Scan(&t.ID, &t.Name, &t.CreatedBy, &t.CreatedAt); err != nil {
		return store.Team{}, err
	}
	t.CreatedAt = utc(t.CreatedAt)
	return t, nil
}

// lockTeam reads the team and holds its row lock until the transaction
// ends; a missing team is NotFound.
func lockTeam(ctx context.Context, q querier, id string) (store.Team, error) {
	return getByID(ctx, q, kindTeam, lockTeamQuery, scanTeam, id)
}

// CreateTeam stores the team and makes its creator a member, in one
// transaction.
func (d db) CreateTeam(ctx context.Context, t store.Team) (store.Team, error) {
	if t.ID == "" {
		t.ID = store.NewID("team")
	}
	t.CreatedAt = stamp(t.CreatedAt)
	err := d.write(ctx, func(q querier) error {
		if err := pin(ctx, q, kindUser, t.CreatedBy); err != nil {
			return err
		}
		created, err := changedOne(ctx, q, insertTeamQuery, t.ID, t.Name, t.CreatedBy, t.CreatedAt)
		if err != nil {
			return err
		}
		if !created {
			return alreadyExists(kindTeam, t.ID)
		}
		_, err = q.Exec(ctx, insertTeamMemberQuery, t.ID, t.CreatedBy)
		return err
	})
	if err != nil {
		return store.Team{}, wrap("create team", err)
	}
	return t, nil
}

// Team returns the team with the id.
func (d db) Team(ctx context.Context, id string) (store.Team, error) {
	t, err := getByID(ctx, d.q, kindTeam, getTeamQuery, scanTeam, id)
	return t, wrap("get team", err)
}

// AddTeamMember makes the user a member and drops their pending invitation,
// in one transaction under the team's lock; added is false when they
// already were a member.
func (d db) AddTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	var added bool
	err := d.write(ctx, func(q querier) error {
		if _, err := lockTeam(ctx, q, teamID); err != nil {
			return err
		}
		if err := pin(ctx, q, kindUser, userID); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, deleteInvitationQuery, teamID, userID); err != nil {
			return err
		}
		var err error
		added, err = changedOne(ctx, q, insertTeamMemberQuery, teamID, userID)
		return err
	})
	if err != nil {
		return false, wrap("add team member", err)
	}
	return added, nil
}

// RemoveTeamMember ends a membership or withdraws an invitation, in one
// transaction under the team's lock. A user who is neither (or does not
// exist) changes nothing. The creator leaves last: while other members
// remain it is BadUserInput, and their leaving takes the team's pending
// invitations with it, so nobody joins a team its creator abandoned.
func (d db) RemoveTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	var removed bool
	err := d.write(ctx, func(q querier) error {
		t, err := lockTeam(ctx, q, teamID)
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, deleteInvitationQuery, teamID, userID); err != nil {
			return err
		}
		creator := userID == t.CreatedBy
		if creator {
			member, err := queryBool(ctx, q, isTeamMemberQuery, teamID, userID)
			if err != nil {
				return err
			}
			others, err := queryBool(ctx, q, otherTeamMembersQuery, teamID, userID)
			if err != nil {
				return err
			}
			if member && others {
				return errs.E(errs.BadUserInput, "the creator of team %q leaves it last: remove its other members first", teamID)
			}
		}
		if removed, err = changedOne(ctx, q, deleteTeamMemberQuery, teamID, userID); err != nil || !removed || !creator {
			return err
		}
		_, err = q.Exec(ctx, deleteTeamInvitationsQuery, teamID)
		return err
	})
	if err != nil {
		return false, wrap("remove team member", err)
	}
	return removed, nil
}

// TeamMembers lists the team's members ordered by user id.
func (d db) TeamMembers(ctx context.Context, teamID string) ([]store.User, error) {
	return listUnder(ctx, d, "list team members", kindTeam, teamID, scanUser, teamMembersQuery, teamID)
}

// IsTeamMember reports whether the user is a member of the team; a missing
// team or user is simply not a membership. Inside a unit of work it first
// takes the team's row lock, the one every change of the team's members
// and invitations takes: the answer then holds until the unit ends, and a
// unit that checks and then changes the team's members holds one lock
// throughout (see the package doc for why not FOR SHARE on the row).
func (d db) IsTeamMember(ctx context.Context, teamID, userID string) (bool, error) {
	if d.unit {
		if _, err := lockTeam(ctx, d.q, teamID); errs.Is(err, errs.NotFound) {
			return false, nil
		} else if err != nil {
			return false, wrap("check team member", err)
		}
	}
	ok, err := queryBool(ctx, d.q, isTeamMemberQuery, teamID, userID)
	return ok, wrap("check team member", err)
}

// UserTeams lists one page of the teams the user is a member of, ordered
// by id.
func (d db) UserTeams(ctx context.Context, userID string, p store.Page) ([]store.Team, error) {
	return listPage(ctx, d, "list user teams", kindUser, userID, p, scanTeam,
		stmt{userTeamsQuery, []any{userID, p.Limit}},
		stmt{userTeamsAfterQuery, []any{userID, p.Limit, p.After}},
		stmt{isTeamMemberQuery, []any{p.After, userID}})
}

// SharesTeam reports whether a and b are members of a common team; everyone
// shares with themself.
func (d db) SharesTeam(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	ok, err := queryBool(ctx, d.q, sharesTeamQuery, a, b)
	return ok, wrap("check shared team", err)
}
