package resolvers

import (
	"context"
	"strings"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/graph/model"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
)

// stream answers a subscription field in one of two modes.
//
// Rendering (realtime.RenderFrom): a transport's Encoder is turning one
// event into bytes for every subscriber of a query shape; the field yields
// that event alone. Nothing is authorized here: the hub routed the event
// only to allowed subscribers, and the rendering must not depend on who
// receives it. Nor on when: every nested field resolves from the event's
// snapshot (convert builds the models with it; Project.members,
// Team.members and User.online return it while rendering), never from the
// store, so a copy rendered late shows what was there at commit.
//
// Live (realtime.TargetFrom): a client subscribes; open authorizes and
// registers a hub subscription whose sink is the transport's connection.
// The returned channel is never read: payloads go from the hub straight to
// the connection's queue, so no goroutine waits per subscription.
func stream[T any](ctx context.Context, after *string, convert func(*realtime.Event, *service.EventData) T,
	open func(auth.Viewer, *realtime.Target) error) (<-chan T, error) {
	if ev, ok := realtime.RenderFrom(ctx); ok {
		d, err := ev.Decoded(service.DecodeEventData)
		if err != nil {
			return nil, err
		}
		ch := make(chan T, 1)
		ch <- convert(ev, d.(*service.EventData))
		close(ch)
		return ch, nil
	}
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	// Root arguments (after, projectId) matter only when subscribing: a
	// rendering reuses some subscriber's operation, whose arguments are not
	// the receiver's.
	if err := checkAfter(after); err != nil {
		return nil, err
	}
	target, ok := realtime.TargetFrom(ctx)
	if !ok {
		return nil, errs.E(errs.BadUserInput, "subscriptions are served over WebSocket (graphql-transport-ws, graphql-ws) or SSE (graphql-sse)")
	}
	if err := open(v, target); err != nil {
		return nil, err
	}
	return make(chan T), nil
}

// checkAfter validates a resume cursor. This server keeps no event history
// yet, so any well-formed cursor is answered CURSOR_EXPIRED: the client
// refetches, then subscribes without after — never a silent gap.
func checkAfter(after *string) error {
	if after == nil {
		return nil
	}
	if _, err := realtime.ParseCursor(*after); err != nil {
		return err
	}
	return errs.E(errs.CursorExpired, "events before this subscription are not kept; refetch, then subscribe without after")
}

// anchored passes subscribe the log position the subscription starts at
// (SubscribeOptions.After): the log head, read before subscribe reads the
// memberships, so those reflect at least every event up to after, and the
// hub applies to the subscription the events after it. (Not atomic with
// the reads: a change committed between them is both read and applied;
// one consistent snapshot, store.Store.Read, replaces this.)
func (r *Resolver) anchored(ctx context.Context, subscribe func(after uint64) error) error {
	head, err := r.Store.LogHead(ctx)
	if err != nil {
		return err
	}
	return subscribe(uint64(head))
}

func isTaskEvent(ev *realtime.Event) bool { return strings.HasPrefix(ev.Type, "TASK_") }

func isProjectEvent(ev *realtime.Event) bool {
	return strings.HasPrefix(ev.Type, "TASK_") || strings.HasPrefix(ev.Type, "PROJECT_")
}

func isType(typ string) func(*realtime.Event) bool {
	return func(ev *realtime.Event) bool { return ev.Type == typ }
}

func (r *Resolver) taskUpdates(ctx context.Context, after *string) (<-chan *model.TaskEvent, error) {
	return stream(ctx, after, func(ev *realtime.Event, d *service.EventData) *model.TaskEvent {
		return &model.TaskEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Task: toTask(*d.Task)}
	}, func(v auth.Viewer, t *realtime.Target) error {
		// The memberships read at position after; the hub then follows the
		// user's joins and leaves from after on.
		return r.anchored(ctx, func(after uint64) error {
			projects, err := r.Store.AllUserProjects(ctx, v.UserID)
			if err != nil {
				return err
			}
			rooms := make([]string, 0, len(projects)+1)
			rooms = append(rooms, realtime.RoomUser(v.UserID))
			for _, p := range projects {
				rooms = append(rooms, realtime.RoomProject(p.ID))
			}
			t.SetSubscription(r.Hub.Subscribe(realtime.SubscribeOptions{
				UserID: v.UserID, Rooms: rooms, After: after, Follow: true,
				Accept: isTaskEvent, Encoder: t.Encoder, Sink: t.Sink,
			}))
			return nil
		})
	})
}

func (r *Resolver) projectUpdates(ctx context.Context, projectID string, after *string) (<-chan *model.ProjectEvent, error) {
	return stream(ctx, after, func(ev *realtime.Event, d *service.EventData) *model.ProjectEvent {
		pe := &model.ProjectEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time}
		snap := d.Snapshot
		if snap == nil {
			snap = &service.Snapshot{}
		}
		if d.Project != nil {
			pe.Project = toProjectAt(*d.Project, snap.ProjectMembers)
		}
		if d.Task != nil {
			pe.Task = toTask(*d.Task)
		}
		if snap.Member != nil {
			pe.Member = toEventUser(*snap.Member)
		}
		return pe
	}, func(v auth.Viewer, t *realtime.Target) error {
		// Membership checked at position after; a removal after it ends the
		// subscription with FORBIDDEN (EndOnLeave), one before it is already
		// reflected by the check. An admin who is not a member watches by
		// their admin rights alone: a demotion ends it (Privileged).
		return r.anchored(ctx, func(after uint64) error {
			if _, err := r.Svc.Project(ctx, projectID); err != nil {
				return err
			}
			privileged, err := r.byAdminRights(ctx, v, r.Store.IsProjectMember, projectID)
			if err != nil {
				return err
			}
			t.SetSubscription(r.Hub.Subscribe(realtime.SubscribeOptions{
				UserID: v.UserID, Rooms: []string{realtime.RoomProject(projectID)}, After: after, EndOnLeave: true,
				Privileged: privileged, Accept: isProjectEvent, Encoder: t.Encoder, Sink: t.Sink,
			}))
			return nil
		})
	})
}

func (r *Resolver) notificationUpdates(ctx context.Context, after *string) (<-chan *model.NotificationEvent, error) {
	return stream(ctx, after, func(ev *realtime.Event, d *service.EventData) *model.NotificationEvent {
		return &model.NotificationEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Notification: toNotification(*d.Notification)}
	}, func(v auth.Viewer, t *realtime.Target) error {
		return r.anchored(ctx, func(after uint64) error {
			t.SetSubscription(r.Hub.Subscribe(realtime.SubscribeOptions{
				UserID: v.UserID, Rooms: []string{realtime.RoomUser(v.UserID)}, After: after,
				Accept: isType(service.NotificationSent), Encoder: t.Encoder, Sink: t.Sink,
			}))
			return nil
		})
	})
}

func (r *Resolver) systemUpdates(ctx context.Context) (<-chan *model.SystemEvent, error) {
	return stream(ctx, nil, func(ev *realtime.Event, d *service.EventData) *model.SystemEvent {
		return &model.SystemEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Message: d.Message}
	}, func(v auth.Viewer, t *realtime.Target) error {
		return r.anchored(ctx, func(after uint64) error {
			t.SetSubscription(r.Hub.Subscribe(realtime.SubscribeOptions{
				UserID: v.UserID, Rooms: []string{realtime.RoomAll}, After: after,
				Accept: isType(service.SystemUpdate), Encoder: t.Encoder, Sink: t.Sink,
			}))
			return nil
		})
	})
}

// stillAdmin checks, under the ordering lock, that v's admin rights hold
// at the subscription's log position: v was computed when the operation
// began, and a demotion committed since then is at or before the position,
// so its Demote control would not reach the subscription.
func (r *Resolver) stillAdmin(ctx context.Context, v auth.Viewer) error {
	if r.Auth == nil {
		return nil
	}
	cur, err := r.Auth.Current(ctx, v)
	if err != nil {
		return err
	}
	if !cur.Admin {
		return errs.E(errs.Forbidden, "your admin rights were revoked")
	}
	return nil
}

// presenceFor accepts the presence events of userID meant for
// userActivity: those without a team (the per-team copies are
// teamUpdates').
func presenceFor(userID string) func(*realtime.Event) bool {
	return func(ev *realtime.Event) bool {
		if !service.IsPresenceEvent(ev.Type) {
			return false
		}
		v, err := ev.Decoded(service.DecodeEventData)
		d, ok := v.(*service.EventData)
		return err == nil && ok && d.Team == nil && d.Presence != nil && d.Presence.UserID == userID
	}
}

// isTeamEvent accepts what teamUpdates carries: membership changes, and
// the per-team copies of its members' presence events.
func isTeamEvent(ev *realtime.Event) bool {
	switch {
	case ev.Type == service.TeamMemberAdded, ev.Type == service.TeamMemberRemoved:
		return true
	case service.IsPresenceEvent(ev.Type):
		v, err := ev.Decoded(service.DecodeEventData)
		d, ok := v.(*service.EventData)
		return err == nil && ok && d.Team != nil
	}
	return false
}

// userActivity follows one user's presence. Who may: the user, anyone who
// shares a team or project with them, an admin; anyone else is NOT_FOUND,
// as an unknown id (service.PresenceAccessTo).
//
// Routing is by rooms: a user's presence events go to their own room and
// to the rooms of their teams and projects (service.PublishPresence). A
// subscriber who shares with them listens to their own membership rooms,
// followed live (Follow), and keeps that user's events; so an event
// reaches them exactly when they share a team or project at that point of
// the log: once they leave the last one they shared, the next event misses
// them, and joining one again brings them back. Their own presence comes
// through their own room. An admin who shares nothing listens to the
// user's room by admin rights (Privileged: a demotion ends it).
func (r *Resolver) userActivity(ctx context.Context, userID string) (<-chan *model.ActivityEvent, error) {
	return stream(ctx, nil, func(ev *realtime.Event, d *service.EventData) *model.ActivityEvent {
		return &model.ActivityEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Presence: toPresence(*d.Presence)}
	}, func(v auth.Viewer, t *realtime.Target) error {
		return r.anchored(ctx, func(after uint64) error {
			access, err := r.Svc.PresenceAccessTo(ctx, userID)
			if err != nil {
				return err
			}
			opts := realtime.SubscribeOptions{
				UserID: v.UserID, After: after, Accept: presenceFor(userID), Encoder: t.Encoder, Sink: t.Sink,
			}
			switch access {
			case service.PresenceSelf:
				opts.Rooms = []string{realtime.RoomUser(v.UserID)}
			case service.PresenceShared:
				if opts.Rooms, err = r.Svc.MembershipRooms(ctx, v.UserID); err != nil {
					return err
				}
				opts.Follow = true
			default:
				if err := r.stillAdmin(ctx, v); err != nil {
					return err
				}
				opts.Rooms, opts.Privileged = []string{realtime.RoomUser(userID)}, true
			}
			t.SetSubscription(r.Hub.Subscribe(opts))
			return nil
		})
	})
}

// teamUpdates carries a team's membership changes and its members'
// presence: members only (admins: any team, by admin rights). Removed, or
// leaving, the subscriber's stream ends with FORBIDDEN after the
// TEAM_MEMBER_REMOVED that says so.
func (r *Resolver) teamUpdates(ctx context.Context, teamID string, after *string) (<-chan *model.TeamEvent, error) {
	return stream(ctx, after, func(ev *realtime.Event, d *service.EventData) *model.TeamEvent {
		te := &model.TeamEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time}
		snap := d.Snapshot
		if snap == nil {
			snap = &service.Snapshot{}
		}
		if d.Team != nil {
			te.Team = toTeamAt(*d.Team, snap.TeamMembers)
		}
		if snap.Member != nil {
			te.Member = toEventUser(*snap.Member)
		}
		if d.Presence != nil {
			te.Presence = toPresence(*d.Presence)
		}
		return te
	}, func(v auth.Viewer, t *realtime.Target) error {
		return r.anchored(ctx, func(after uint64) error {
			if _, err := r.Svc.Team(ctx, teamID); err != nil {
				return err
			}
			privileged, err := r.byAdminRights(ctx, v, r.Store.IsTeamMember, teamID)
			if err != nil {
				return err
			}
			t.SetSubscription(r.Hub.Subscribe(realtime.SubscribeOptions{
				UserID: v.UserID, Rooms: []string{realtime.RoomTeam(teamID)}, After: after, EndOnLeave: true,
				Privileged: privileged, Accept: isTeamEvent, Encoder: t.Encoder, Sink: t.Sink,
			}))
			return nil
		})
	})
}

// byAdminRights reports whether v watches the project or team id by admin
// rights alone (an admin, not a member): such a subscription is
// Privileged, ended by a demotion, and the rights are read again now so a
// demotion landing while it subscribes cannot slip past.
func (r *Resolver) byAdminRights(ctx context.Context, v auth.Viewer, isMember func(ctx context.Context, id, userID string) (bool, error), id string) (bool, error) {
	if !v.Admin {
		return false, nil
	}
	member, err := isMember(ctx, id, v.UserID)
	if err != nil || member {
		return false, err
	}
	return true, r.stillAdmin(ctx, v)
}
