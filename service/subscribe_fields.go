package service

import (
	"context"
	"strings"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// The subscription fields. Each returns the hub subscription whose sink
// and encoder are to's; a nil after starts at the current end of the log,
// a cursor resumes after it (fields that take after only).

// TaskUpdates follows the tasks the caller owns, is assigned or that belong
// to their projects: their own room and the rooms of their projects, read
// at the anchor and followed live (a project joined later is added, one
// left is dropped).
func (s *Subscriptions) TaskUpdates(ctx context.Context, after *string, to *realtime.Target) (*realtime.Subscription, error) {
	return s.open(ctx, after, to, func(ctx context.Context, tx store.ReadTx, v auth.Viewer) (realtime.SubscribeOptions, error) {
		projects, err := tx.AllUserProjects(ctx, v.UserID)
		if err != nil {
			return realtime.SubscribeOptions{}, err
		}
		rooms := make([]string, 0, len(projects)+1)
		rooms = append(rooms, realtime.RoomUser(v.UserID))
		for _, p := range projects {
			rooms = append(rooms, realtime.RoomProject(p.ID))
		}
		return realtime.SubscribeOptions{Rooms: rooms, Follow: true, Accept: isTaskEvent}, nil
	})
}

// ProjectUpdates carries a project's events and its tasks' events: its
// members only, admins any project (memberProject), as memberRoom follows
// them.
func (s *Subscriptions) ProjectUpdates(ctx context.Context, projectID string, after *string, to *realtime.Target) (*realtime.Subscription, error) {
	return s.open(ctx, after, to, func(ctx context.Context, tx store.ReadTx, v auth.Viewer) (realtime.SubscribeOptions, error) {
		if _, err := memberProject(ctx, tx, v, projectID); err != nil {
			return realtime.SubscribeOptions{}, err
		}
		return memberRoom(ctx, v, projectID, tx.IsProjectMember, realtime.RoomProject(projectID), isProjectEvent)
	})
}

// Notifications carries the caller's notifications.
func (s *Subscriptions) Notifications(ctx context.Context, after *string, to *realtime.Target) (*realtime.Subscription, error) {
	return s.open(ctx, after, to, func(_ context.Context, _ store.ReadTx, v auth.Viewer) (realtime.SubscribeOptions, error) {
		return realtime.SubscribeOptions{Rooms: []string{realtime.RoomUser(v.UserID)}, Accept: isType(NotificationSent)}, nil
	})
}

// SystemUpdates carries the system announcements, to every user.
func (s *Subscriptions) SystemUpdates(ctx context.Context, to *realtime.Target) (*realtime.Subscription, error) {
	return s.open(ctx, nil, to, func(context.Context, store.ReadTx, auth.Viewer) (realtime.SubscribeOptions, error) {
		return realtime.SubscribeOptions{Rooms: []string{realtime.RoomAll}, Accept: isType(SystemUpdate)}, nil
	})
}

// UserActivity follows one user's presence. Who may: the user, anyone who
// shares a team or project with them, an admin; anyone else is NOT_FOUND,
// as an unknown id (the same answer after the same reads).
//
// Routing is by rooms: a user's presence events go to their own room and
// to the rooms of their teams and projects (PublishPresence). A subscriber
// who shares with them listens to their own membership rooms, followed
// live (Follow), and keeps that user's events; so an event reaches them
// exactly when they share a team or project at that point: once they leave
// the last one they shared, the next event misses them, and joining one
// again brings them back. Their own presence comes through their own room.
// An admin who shares nothing listens to the user's room by admin rights
// (Privileged: a demotion ends it).
func (s *Subscriptions) UserActivity(ctx context.Context, userID string, to *realtime.Target) (*realtime.Subscription, error) {
	return s.open(ctx, nil, to, func(ctx context.Context, tx store.ReadTx, v auth.Viewer) (realtime.SubscribeOptions, error) {
		access, err := presenceAccessTo(ctx, tx, v, userID)
		if err != nil {
			return realtime.SubscribeOptions{}, err
		}
		o := realtime.SubscribeOptions{Accept: presenceFor(userID)}
		switch access {
		case presenceSelf:
			o.Rooms = []string{realtime.RoomUser(v.UserID)}
		case presenceByAdmin:
			o.Rooms, o.Privileged = []string{realtime.RoomUser(userID)}, true
		case presenceShared:
			teams, projects, err := memberships(ctx, tx, v.UserID)
			if err != nil {
				return realtime.SubscribeOptions{}, err
			}
			o.Rooms, o.Follow = membershipRooms(teams, projects), true
		}
		return o, nil
	})
}

// TeamUpdates carries a team's membership changes and its members'
// presence: members only, admins any team (memberTeam), as memberRoom
// follows them. Removed, or leaving, a member's stream ends with FORBIDDEN
// after the TEAM_MEMBER_REMOVED that says so.
func (s *Subscriptions) TeamUpdates(ctx context.Context, teamID string, after *string, to *realtime.Target) (*realtime.Subscription, error) {
	return s.open(ctx, after, to, func(ctx context.Context, tx store.ReadTx, v auth.Viewer) (realtime.SubscribeOptions, error) {
		if _, err := memberTeam(ctx, tx, v, teamID); err != nil {
			return realtime.SubscribeOptions{}, err
		}
		return memberRoom(ctx, v, teamID, tx.IsTeamMember, realtime.RoomTeam(teamID), isTeamEvent)
	})
}

// memberRoom subscribes v to the room of a project or team they may read
// (checked at the anchor): a removal after the anchor ends the
// subscription with FORBIDDEN (EndOnLeave), one before it failed the
// check. An admin who is not a member watches by admin rights alone: a
// demotion ends it (Privileged).
func memberRoom(ctx context.Context, v auth.Viewer, objID string, isMember func(ctx context.Context, objID, userID string) (bool, error),
	room string, accept func(*realtime.Event) bool) (realtime.SubscribeOptions, error) {
	o := realtime.SubscribeOptions{Rooms: []string{room}, EndOnLeave: true, Accept: accept}
	if v.Admin {
		member, err := isMember(ctx, objID, v.UserID)
		o.Privileged = !member
		return o, err
	}
	return o, nil
}

// The event types each field carries (its Accept filter).

func isTaskEvent(ev *realtime.Event) bool { return strings.HasPrefix(ev.Type, "TASK_") }

func isProjectEvent(ev *realtime.Event) bool {
	return strings.HasPrefix(ev.Type, "TASK_") || strings.HasPrefix(ev.Type, "PROJECT_")
}

func isType(typ string) func(*realtime.Event) bool {
	return func(ev *realtime.Event) bool { return ev.Type == typ }
}

// presenceFor accepts the presence events of userID meant for
// userActivity: those without a team (the per-team copies are
// teamUpdates').
func presenceFor(userID string) func(*realtime.Event) bool {
	return func(ev *realtime.Event) bool {
		if !IsPresenceEvent(ev.Type) {
			return false
		}
		v, err := ev.Decoded(DecodeEventData)
		d, ok := v.(*EventData)
		return err == nil && ok && d.Team == nil && d.Presence != nil && d.Presence.UserID == userID
	}
}

// isTeamEvent accepts what teamUpdates carries: membership changes, and
// the per-team copies of its members' presence events.
func isTeamEvent(ev *realtime.Event) bool {
	switch {
	case ev.Type == TeamMemberAdded, ev.Type == TeamMemberRemoved:
		return true
	case IsPresenceEvent(ev.Type):
		v, err := ev.Decoded(DecodeEventData)
		d, ok := v.(*EventData)
		return err == nil && ok && d.Team != nil
	}
	return false
}
