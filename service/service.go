// Package service owns taskpulse's use cases: who may do what, the change in
// the store, and the event published after the change commits. Resolvers,
// the CLI and other entry points call it; it knows no GraphQL and no
// transport.
package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// Publisher appends events to the log every instance reads
// (realtime.Broker satisfies it).
type Publisher interface {
	Publish(ctx context.Context, ev *realtime.Event) error
}

// Limits on what clients send; every string a client controls is bounded.
const (
	MaxNameLen        = 100
	MaxTitleLen       = 200
	MaxDescriptionLen = 10_000
	MaxMessageLen     = 2_000
	MaxIDLen          = 128
)

// Service implements the use cases.
type Service struct {
	store store.Store
	pub   Publisher
	log   *slog.Logger

	// order is held from a change's commit until its event is published, so
	// the event log is in commit order: a member removed before a task
	// changes never receives that change, and two updates of one task reach
	// clients in the order they committed. SQLite has a single writer, so
	// this costs no concurrency; a multi-instance deployment needs a log
	// ordered by the database itself (a later issue).
	order sync.Mutex

	// online reports whether a user has a live connection, for the
	// snapshots of events (UsePresence, SetPresence); nil: nobody is.
	online func(userID string) bool
	// presence is every user's presence (UsePresence, presence.go); nil:
	// nobody's is known.
	presence presence.Presence
}

// New returns a Service over st that publishes to pub.
func New(st store.Store, pub Publisher, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: st, pub: pub, log: log}
}

// SetPresence tells the service who is online, for what events show of
// their users, without a presence.Presence (UsePresence sets both; tests
// use this). Call it before the service is used.
func (s *Service) SetPresence(online func(userID string) bool) { s.online = online }

// Store returns the underlying store (for read paths that need no rules,
// such as resolving the members of an already authorized project).
func (s *Service) Store() store.Store { return s.store }

// Ordered runs fn while no change can commit and publish, so what fn reads
// and what it registers with the hub see the same point of the event log.
// Subscription resolvers use it to check membership and subscribe
// atomically with respect to membership changes.
func (s *Service) Ordered(fn func() error) error {
	s.order.Lock()
	defer s.order.Unlock()
	return fn()
}

// commit runs change (which commits to the store), completes the events
// it returns with their snapshots (seal: the state right after the
// change, as no other change commits meanwhile) and publishes them, in
// order, under the ordering lock. A failed snapshot or publish is logged
// and reported as INTERNAL: the change is committed, so the caller must
// not retry blindly; clients that missed the event refetch.
func (s *Service) commit(ctx context.Context, change func() ([]*realtime.Event, error)) error {
	s.order.Lock()
	defer s.order.Unlock()
	events, err := change()
	if err != nil {
		return err
	}
	if err := s.seal(ctx, events); err != nil {
		s.log.Error("snapshot after commit failed", "err", err)
		return errs.E(errs.Internal, "the change was saved but its event could not be published")
	}
	for _, ev := range events {
		// The request may be cancelled after commit; the event must still go out.
		if err := s.pub.Publish(context.WithoutCancel(ctx), ev); err != nil {
			s.log.Error("publish after commit failed", "type", ev.Type, "err", err)
			return errs.E(errs.Internal, "the change was saved but its event could not be published")
		}
	}
	return nil
}

// viewer returns the authenticated caller or UNAUTHENTICATED.
func viewer(ctx context.Context) (auth.Viewer, error) { return auth.Require(ctx) }

// EventData is the JSON payload of every event taskpulse publishes. An
// event is what happened: it carries a snapshot of everything it shows,
// taken at commit (Snapshot), so rendering it never reads the store and a
// recipient sees only what they could have seen when it happened, however
// late their copy is rendered. That also makes an event self-contained,
// as a durable log needs.
type EventData struct {
	Task    *store.Task    `json:"task,omitempty"`
	Project *store.Project `json:"project,omitempty"`
	Team    *store.Team    `json:"team,omitempty"`
	// Member is the user the event is about, as its builder read it. It is
	// not published: Snapshot.Member is what the event shows of them.
	Member       *store.User         `json:"-"`
	Notification *store.Notification `json:"notification,omitempty"`
	Message      string              `json:"message,omitempty"`
	// Presence is the user's presence an event shows: USER_* events' (as
	// at the change), and the member's of a team membership event (as at
	// the commit).
	Presence *presence.State `json:"presence,omitempty"`
	// Snapshot is filled at commit (Service.commit); a builder sets parts
	// of it only for what the change itself destroys (the members of a
	// deleted project).
	Snapshot *Snapshot `json:"snapshot,omitempty"`
}

// Snapshot is what an event shows of users, as they were at commit.
type Snapshot struct {
	// Member is EventData.Member.
	Member *EventUser `json:"member,omitempty"`
	// ProjectMembers are EventData.Project's members, ordered by id.
	ProjectMembers []EventUser `json:"projectMembers,omitempty"`
	// TeamMembers are EventData.Team's members, ordered by id.
	TeamMembers []EventUser `json:"teamMembers,omitempty"`
}

// EventUser is a user as an event shows them: the fields a recipient may
// see (never the admin flag or the account's state).
type EventUser struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email,omitempty"`
	Online bool   `json:"online,omitempty"`
}

// DecodeEventData decodes an event's Data; use it with Event.Decoded.
func DecodeEventData(b []byte) (any, error) {
	var d EventData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// newEvent builds an event; its rooms are deduplicated and empty ones
// dropped. Its Data is encoded by commit, once the snapshot is taken; until
// then data travels as the event's decoded form (Event.Preset), which is
// also what this instance renders from.
func newEvent(typ string, at time.Time, data EventData, ctl *realtime.Control, rooms ...string) *realtime.Event {
	seen := make(map[string]bool, len(rooms))
	out := rooms[:0]
	for _, r := range rooms {
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	ev := &realtime.Event{Type: typ, Rooms: out, Time: at, Control: ctl}
	ev.Preset(&data)
	return ev
}

// userRoom is RoomUser for a non-empty id, "" otherwise (dropped by newEvent).
func userRoom(id string) string {
	if id == "" {
		return ""
	}
	return realtime.RoomUser(id)
}

func projectRoom(id string) string {
	if id == "" {
		return ""
	}
	return realtime.RoomProject(id)
}

// text validates a required or optional client string: trimmed, bounded,
// valid UTF-8.
func text(field, v string, required bool, max int) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case !utf8.ValidString(v):
		return "", errs.E(errs.BadUserInput, "%s is not valid UTF-8", field)
	case required && v == "":
		return "", errs.E(errs.BadUserInput, "%s must not be empty", field)
	case utf8.RuneCountInString(v) > max:
		return "", errs.E(errs.BadUserInput, "%s is longer than %d characters", field, max)
	}
	return v, nil
}

// id validates an id argument.
func id(field, v string) error {
	if v == "" || len(v) > MaxIDLen {
		return errs.E(errs.BadUserInput, "%s must be 1 to %d bytes", field, MaxIDLen)
	}
	return nil
}
