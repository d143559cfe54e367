package main

import (
	"context"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
)

// Presence wiring: connections (the registry's observer) and operations
// (an operation middleware) feed the presence state; its changes go
// through a relay to the service, which publishes them as events.

// presenceObserver tells presence of every connection the registry gains
// and loses: a user's tabs, over every transport, count as one presence.
// Memory's Connect and Disconnect only update a map (their events are
// published by the relay), so they are fit for the registry's callers,
// which may hold a connection's lock.
type presenceObserver struct {
	p   presence.Presence
	log *slog.Logger
}

func (o presenceObserver) Opened(c realtime.ConnInfo) {
	if err := o.p.Connect(context.Background(), c.UserID, c.ID); err != nil {
		o.log.Warn("presence: connect not recorded", "user", c.UserID, "conn", c.ID, "err", err)
	}
}

func (o presenceObserver) Closed(c realtime.ConnInfo) {
	if err := o.p.Disconnect(context.Background(), c.UserID, c.ID); err != nil {
		o.log.Warn("presence: disconnect not recorded", "user", c.UserID, "conn", c.ID, "err", err)
	}
}

// presenceActivity records every operation of an authenticated user —
// over HTTP, WebSocket or SSE — as activity: it keeps them from turning
// AWAY and brings them back ONLINE. Renderings of events have no viewer
// and are not activity. With Redis the touch is queued (presence_writer.go):
// an operation does not wait on the network for a LastSeen.
func (m *Main) presenceActivity(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if v, ok := auth.ViewerFrom(ctx); ok {
		if m.writer != nil {
			m.writer.touch(v.UserID)
		} else if err := m.presence.Touch(ctx, v.UserID); err != nil {
			m.log.Warn("presence: activity not recorded", "user", v.UserID, "err", err)
		}
	}
	return next(ctx)
}

// publishPresence is the relay's handler: a presence change becomes events.
func (m *Main) publishPresence(ch presence.Change) {
	m.metrics.PresenceChanged(presenceTransition(ch))
	if err := m.svc.PublishPresence(context.Background(), ch); err != nil {
		m.log.Error("presence: change not published", "type", ch.Kind.EventType(), "user", ch.State.UserID, "err", err)
	}
}

// openPresence starts presence: the state, the relay that publishes its
// changes, and the feeds into it. After the service. Without Redis it is
// in process, as it always was; with Redis it is shared by the instances
// (presence.Redis, under this instance's name), fed through a writer that
// never makes the registry or an operation wait, and it lists every
// instance's connections (m.dir).
func (m *Main) openPresence() {
	m.relay = presence.NewRelay(m.publishPresence)
	opts := presence.Options{
		OfflineGrace:     m.cfg.PresenceOfflineGrace,
		AwayAfter:        m.cfg.PresenceAwayAfter,
		ActivityInterval: m.cfg.PresenceActivityInterval,
		OnChange:         m.relay.Handle,
	}
	if m.redis == nil {
		m.presence = presence.NewMemory(opts)
		m.registry.Observe(presenceObserver{p: m.presence, log: m.log})
		m.svc.UsePresence(m.presence)
		return
	}
	p := presence.NewRedis(m.redis, opts, presence.RedisOptions{
		Prefix: m.redisPrefix, InstanceID: m.instance, InstanceTTL: m.cfg.PresenceInstanceTTL,
	})
	m.presence, m.dir = p, p
	m.writer = newPresenceWriter(p, p, m.registry, m.log)
	m.registry.Observe(m.writer)
	m.svc.UsePresence(guardedPresence{Presence: p, g: &m.guard})
}

// closePresence writes the queued changes (with Redis), stops presence's
// timers, then the relay (changes not yet published are dropped: presence
// is not history).
func (m *Main) closePresence() error {
	if m.writer != nil {
		m.writer.Close()
	}
	var err error
	if m.presence != nil {
		err = m.presence.Close()
	}
	if m.relay != nil {
		m.relay.Close()
	}
	return err
}

// presenceTransition names a change for the transitions metric: online,
// offline, away (an activity that left the user AWAY) or activity.
func presenceTransition(ch presence.Change) string {
	switch {
	case ch.Kind == presence.KindOnline:
		return "online"
	case ch.Kind == presence.KindOffline:
		return "offline"
	case ch.State.Status == presence.Away:
		return "away"
	}
	return "activity"
}
