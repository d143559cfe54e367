package resolvers

import (
	"context"

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
// Live (realtime.TargetFrom): a client subscribes; open (a use case of
// service.Subscriptions) authorizes and registers a hub subscription whose
// sink is the transport's connection. The returned channel is never read:
// payloads go from the hub straight to the connection's queue, so no
// goroutine waits per subscription.
func stream[T any](ctx context.Context, convert func(*realtime.Event, *service.EventData) T,
	open func(*realtime.Target) (*realtime.Subscription, error)) (<-chan T, error) {
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
	// Root arguments (after, projectId) matter only when subscribing: a
	// rendering reuses some subscriber's operation, whose arguments are not
	// the receiver's.
	if _, err := auth.Require(ctx); err != nil {
		return nil, err
	}
	target, ok := realtime.TargetFrom(ctx)
	if !ok {
		return nil, errs.E(errs.BadUserInput, "subscriptions are served over WebSocket (graphql-transport-ws, graphql-ws) or SSE (graphql-sse)")
	}
	sub, err := open(target)
	if err != nil {
		return nil, err
	}
	target.SetSubscription(sub)
	return make(chan T), nil
}

func (r *Resolver) taskUpdates(ctx context.Context, after *string) (<-chan *model.TaskEvent, error) {
	return stream(ctx, func(ev *realtime.Event, d *service.EventData) *model.TaskEvent {
		return &model.TaskEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Task: toTask(*d.Task)}
	}, func(t *realtime.Target) (*realtime.Subscription, error) {
		return r.Subs.TaskUpdates(ctx, after, t)
	})
}

func (r *Resolver) projectUpdates(ctx context.Context, projectID string, after *string) (<-chan *model.ProjectEvent, error) {
	return stream(ctx, func(ev *realtime.Event, d *service.EventData) *model.ProjectEvent {
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
	}, func(t *realtime.Target) (*realtime.Subscription, error) {
		return r.Subs.ProjectUpdates(ctx, projectID, after, t)
	})
}

func (r *Resolver) notificationUpdates(ctx context.Context, after *string) (<-chan *model.NotificationEvent, error) {
	return stream(ctx, func(ev *realtime.Event, d *service.EventData) *model.NotificationEvent {
		return &model.NotificationEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Notification: toNotification(*d.Notification)}
	}, func(t *realtime.Target) (*realtime.Subscription, error) {
		return r.Subs.Notifications(ctx, after, t)
	})
}

func (r *Resolver) systemUpdates(ctx context.Context) (<-chan *model.SystemEvent, error) {
	return stream(ctx, func(ev *realtime.Event, d *service.EventData) *model.SystemEvent {
		return &model.SystemEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Message: d.Message}
	}, func(t *realtime.Target) (*realtime.Subscription, error) {
		return r.Subs.SystemUpdates(ctx, t)
	})
}

func (r *Resolver) userActivity(ctx context.Context, userID string) (<-chan *model.ActivityEvent, error) {
	return stream(ctx, func(ev *realtime.Event, d *service.EventData) *model.ActivityEvent {
		return &model.ActivityEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Presence: toPresence(*d.Presence)}
	}, func(t *realtime.Target) (*realtime.Subscription, error) {
		return r.Subs.UserActivity(ctx, userID, t)
	})
}

func (r *Resolver) teamUpdates(ctx context.Context, teamID string, after *string) (<-chan *model.TeamEvent, error) {
	return stream(ctx, func(ev *realtime.Event, d *service.EventData) *model.TeamEvent {
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
	}, func(t *realtime.Target) (*realtime.Subscription, error) {
		return r.Subs.TeamUpdates(ctx, teamID, after, t)
	})
}
