package sqlite

import (
	"context"

	"github.com/taskpulse/taskpulse/store"
)

const (
	// insertInvitationQuery stores an invitation only for a user who exists,
	// is not a member and is not invited yet, in one statement: the same
	// work whichever it is. Parameters: team, user, inviter, time, user,
	// team, user.
	insertInvitationQuery = `INSERT INTO invitations (team_id, user_id, invited_by, created_at)
		SELECT ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)
			AND NOT EXISTS (SELECT 1 FROM team_members WHERE team_id = ? AND user_id = ?)
		ON CONFLICT DO NOTHING`
	deleteInvitationQuery      = `DELETE FROM invitations WHERE team_id = ? AND user_id = ?`
	deleteTeamInvitationsQuery = `DELETE FROM invitations WHERE team_id = ?`
	userInvitationsQuery       = `SELECT i.team_id, t.name, i.user_id, i.invited_by, i.created_at
		FROM invitations i JOIN teams t ON t.id = i.team_id
		WHERE i.user_id = ? ORDER BY i.created_at, i.team_id`
)

func scanInvitation(sc scanner) (store.Invitation, error) {
	var inv store.Invitation
	var created int64
	if err := sc.Scan(&inv.TeamID, &inv.TeamName, &inv.UserID, &inv.InvitedBy, &created); err != nil {
		return store.Invitation{}, err
	}
	inv.CreatedAt = fromMicros(created)
	return inv, nil
}

// CreateInvitation stores the invitation and its notice in one transaction;
// see store.Store for when nothing is stored.
func (s *Store) CreateInvitation(ctx context.Context, inv store.Invitation, notice store.Notification) (store.Notification, bool, error) {
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
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindTeam, inv.TeamID); err != nil {
			return err
		}
		if err := mustExist(ctx, tx, kindUser, inv.InvitedBy); err != nil {
			return err
		}
		var err error
		created, err = changedOne(ctx, tx, insertInvitationQuery,
			inv.TeamID, inv.UserID, inv.InvitedBy, micros(inv.CreatedAt), inv.UserID, inv.TeamID, inv.UserID)
		if err != nil || !created {
			return err
		}
		if err := mustBeNew(ctx, tx, kindNotification, notice.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, insertNotificationQuery,
			notice.ID, notice.UserID, nullable(notice.SenderID), notice.Message, notice.Read, micros(notice.CreatedAt))
		return err
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
func (s *Store) UserInvitations(ctx context.Context, userID string) ([]store.Invitation, error) {
	return listUnder(ctx, s, "list user invitations", kindUser, userID, scanInvitation, userInvitationsQuery, userID)
}

// AcceptInvitation consumes the invitation and inserts the membership in
// one transaction.
func (s *Store) AcceptInvitation(ctx context.Context, teamID, userID string) (bool, error) {
	var accepted bool
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindTeam, teamID); err != nil {
			return err
		}
		var err error
		if accepted, err = changedOne(ctx, tx, deleteInvitationQuery, teamID, userID); err != nil || !accepted {
			return err
		}
		_, err = tx.ExecContext(ctx, insertTeamMemberQuery, teamID, userID)
		return err
	})
	if err != nil {
		return false, wrap("accept invitation", err)
	}
	return accepted, nil
}

// DeleteInvitation drops the user's invitation to the team.
func (s *Store) DeleteInvitation(ctx context.Context, teamID, userID string) (bool, error) {
	var deleted bool
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindTeam, teamID); err != nil {
			return err
		}
		var err error
		deleted, err = changedOne(ctx, tx, deleteInvitationQuery, teamID, userID)
		return err
	})
	if err != nil {
		return false, wrap("delete invitation", err)
	}
	return deleted, nil
}
