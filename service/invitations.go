package service

import (
	"context"
	"fmt"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// Consent before sharing: a team unlocks its members' emails, presence,
// notifications and assignment to each other, so a team's creator invites
// and the invitee joins only by accepting. The invitee learns of it live
// through the channel every app already listens to — a NOTIFICATION_SENT
// on their `notifications` subscription, stored in their notifications for
// when they are offline — and finds it in `invitations`; until they
// accept, they see nothing of the team and the team nothing of them.

// invite records, in the unit of work tx, the creator's invitation of
// userID to t and returns the event that tells the invitee. Inviting
// twice, inviting a member and inviting an id that does not exist all
// answer alike and change nothing, after the same store calls: the inviter
// cannot tell which ids exist.
func (s *Service) invite(ctx context.Context, tx store.Tx, v auth.Viewer, t store.Team, userID string) ([]*realtime.Event, error) {
	inviter, err := tx.User(ctx, v.UserID)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("%s invited you to the team %q (%s): accept or decline it (acceptInvitation, declineInvitation)",
		inviter.Name, t.Name, t.ID)
	n, created, err := tx.CreateInvitation(ctx,
		store.Invitation{TeamID: t.ID, UserID: userID, InvitedBy: v.UserID},
		store.Notification{Message: msg})
	if err != nil || !created {
		return nil, err
	}
	return []*realtime.Event{newEvent(NotificationSent, n.CreatedAt, EventData{Notification: &n}, nil, realtime.RoomUser(userID))}, nil
}

// Invitations lists the caller's pending invitations, oldest first.
func (s *Service) Invitations(ctx context.Context) ([]store.Invitation, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.UserInvitations(ctx, v.UserID)
}

// AcceptInvitation makes the caller a member of a team they were invited
// to (atomically consuming the invitation) and publishes TEAM_MEMBER_ADDED,
// whose Join adds the team's room to the caller's open subscriptions.
// Accepting again as a member is a no-op; without an invitation it is
// FORBIDDEN.
func (s *Service) AcceptInvitation(ctx context.Context, teamID string) (store.Team, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Team{}, err
	}
	if err := id("teamId", teamID); err != nil {
		return store.Team{}, err
	}
	var t store.Team
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if t, err = tx.Team(ctx, teamID); err != nil {
			return nil, err
		}
		u, err := tx.User(ctx, v.UserID)
		if err != nil {
			return nil, err
		}
		accepted, err := tx.AcceptInvitation(ctx, teamID, v.UserID)
		if err != nil {
			return nil, err
		}
		if accepted {
			return []*realtime.Event{teamMemberEvent(TeamMemberAdded, realtime.Join, t, u)}, nil
		}
		member, err := tx.IsTeamMember(ctx, teamID, v.UserID)
		if err != nil || member {
			return nil, err
		}
		return nil, errs.E(errs.Forbidden, "you have no invitation to team %q", teamID)
	})
	if err != nil {
		return store.Team{}, err
	}
	return t, nil
}

// DeclineInvitation drops the caller's invitation to a team and reports
// whether there was one. The inviter is not told: one store call, no event.
func (s *Service) DeclineInvitation(ctx context.Context, teamID string) (bool, error) {
	v, err := viewer(ctx)
	if err != nil {
		return false, err
	}
	if err := id("teamId", teamID); err != nil {
		return false, err
	}
	return s.store.DeleteInvitation(ctx, teamID, v.UserID)
}
