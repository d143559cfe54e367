package postgres

import (
	"context"

	"github.com/taskpulse/taskpulse/store"
)

const (
	// insertInvitationQuery stores an invitation only for a user who exists,
	// is not a member and is not invited yet, in one statement: the same
	// work whichever it is. It runs under the team's lock, so no membership
	// appears between its check and its insert. Parameters: team, user,
	// inviter, time.
	insertInvitationQuery = `INSERT INTO invitations (team_id, user_id, invited_by, created_at)
		SELECT $1::text, $2::text, $3::text, $4::timestamptz
		WHERE EXISTS (SELECT 1 FROM users WHERE id = $2)
			AND NOT EXISTS (SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2)
		ON CONFLICT DO NOTHING`
	deleteInvitationQuery      = `DELETE FROM invitations WHERE team_id = $1 AND user_id = $2`
	deleteTeamInvitationsQuery = `DELETE FROM invitations WHERE team_id = $1`
	userInvitationsQuery       = `SELECT i.team_id, t.name, i.user_id, i.invited_by, i.created_at
		FROM invitations i JOIN teams t ON t.id = i.team_id
		WHERE i.user_id = $1 ORDER BY i.created_at, i.team_id`
)

func scanInvitation(sc scanner) (store.Invitation, error) {
	var inv store.Invitation
	if err := sc.Scan(&inv.TeamID, &inv.TeamName, &inv.UserID, &inv.InvitedBy, &inv.CreatedAt); err != nil {
		return store.Invitation{}, err
	}
	inv.CreatedAt = utc(inv.CreatedAt)
	return inv, nil
}

// CreateInvitation stores the invitation and its notice in one transaction
// under the team's lock; see store.Store for when nothing is stored.
func (d db) CreateInvitation(ctx context.Context, inv store.Invitation, notice store.Notification) (store.Notification, bool, error) {
	inv.CreatedAt = stamp(inv.CreatedAt)
	if notice.ID == "" {
		notice.ID = store.NewID("ntf")
	}
	if notice.CreatedAt.IsZero() {
		notice.CreatedAt = inv.CreatedAt
	}
	notice.CreatedAt = stamp(notice.CreatedAt)
	notice.UserID, notice.SenderID = inv.UserID, inv.InvitedBy
	var created bool
	err := d.write(ctx, func(q querier) error {
		if _, err := lockTeam(ctx, q, inv.TeamID); err != nil {
			return err
		}
		if err := pin(ctx, q, kindUser, inv.InvitedBy); err != nil {
			return err
		}
		var err error
		created, err = changedOne(ctx, q, insertInvitationQuery, inv.TeamID, inv.UserID, inv.InvitedBy, inv.CreatedAt)
		if err != nil || !created {
			return err
		}
		return insertNotification(ctx, q, notice)
	})
	if err != nil {
		return store.Notification{}, false, wrap("create invitation", err)
	}
	if !created {
		return store.Notification{}, false, nil
	}
	return notice, true, nil
}

// UserInvitations lists the user's pending invitations, oldest first.
func (d db) UserInvitations(ctx context.Context, userID string) ([]store.Invitation, error) {
	return listUnder(ctx, d, "list user invitations", kindUser, userID, scanInvitation, userInvitationsQuery, userID)
}

// AcceptInvitation consumes the invitation and inserts the membership in
// one transaction under the team's lock: of concurrent accepts, the first
// deletes the invitation and the others find none.
func (d db) AcceptInvitation(ctx context.Context, teamID, userID string) (bool, error) {
	var accepted bool
	err := d.write(ctx, func(q querier) error {
		if _, err := lockTeam(ctx, q, teamID); err != nil {
			return err
		}
		var err error
		if accepted, err = changedOne(ctx, q, deleteInvitationQuery, teamID, userID); err != nil || !accepted {
			return err
		}
		_, err = q.Exec(ctx, insertTeamMemberQuery, teamID, userID)
		return err
	})
	if err != nil {
		return false, wrap("accept invitation", err)
	}
	return accepted, nil
}

// DeleteInvitation drops the user's invitation to the team.
func (d db) DeleteInvitation(ctx context.Context, teamID, userID string) (bool, error) {
	var deleted bool
	err := d.write(ctx, func(q querier) error {
		if err := pin(ctx, q, kindTeam, teamID); err != nil {
			return err
		}
		var err error
		deleted, err = changedOne(ctx, q, deleteInvitationQuery, teamID, userID)
		return err
	})
	if err != nil {
		return false, wrap("delete invitation", err)
	}
	return deleted, nil
}
