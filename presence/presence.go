// Package presence owns who is online and what they are doing: per user,
// their live connections (many tabs, any transport), their status (ONLINE,
// AWAY, OFFLINE), when they were last active, and the page, task and
// project they said they are on. It decides the transitions — first
// connection → USER_ONLINE, last connection closed and PRESENCE_OFFLINE_GRACE
// passed → USER_OFFLINE, idle for PRESENCE_AWAY_AFTER → AWAY, activity →
// ONLINE — and reports each as a Change, coalescing a user's activity
// changes to at most one per ActivityInterval.
//
// It knows nothing of rooms, GraphQL or who may see whom: the service layer
// turns Changes into events and decides where they go.
//
// Presence is the interface; Memory (presence_memory.go) is the in-process
// implementation; a Redis one (many instances) plugs in beside it and must
// pass the same suite, presence/presencetest. Time comes from an injected
// Clock and every timer is run by Sweep, so tests drive hours of idleness
// without sleeping.
package presence

import (
	"context"
	"errors"
	"time"
)

// Status is a user's presence status (GraphQL PresenceStatus).
type Status string

// Statuses.
const (
	Online  Status = "ONLINE"
	Away    Status = "AWAY"
	Offline Status = "OFFLINE"
)

// State is one user's presence as others see it. An OFFLINE user has no
// page, task or project. LastSeen is the last activity (an operation, a
// presence update, a connection opening); zero for a user not seen since
// the presence state began.
type State struct {
	UserID        string    `json:"userId"`
	Status        Status    `json:"status"`
	LastSeen      time.Time `json:"lastSeen"`
	CurrentPage   string    `json:"currentPage,omitempty"`
	ActiveTask    string    `json:"activeTask,omitempty"`
	ActiveProject string    `json:"activeProject,omitempty"`
}

// Kind is what a Change reports.
type Kind uint8

// Kinds of change.
const (
	// KindOnline: the user's first connection opened (they were OFFLINE).
	KindOnline Kind = iota + 1
	// KindOffline: the user's last connection closed OfflineGrace ago and
	// none opened since.
	KindOffline
	// KindActivity: status (ONLINE ↔ AWAY), page, task or project changed
	// while online. Coalesced: at most one per user per ActivityInterval,
	// carrying the latest state; the last state always goes out.
	KindActivity
)

// EventType is the GraphQL EventType of the change.
func (k Kind) EventType() string {
	switch k {
	case KindOnline:
		return "USER_ONLINE"
	case KindOffline:
		return "USER_OFFLINE"
	case KindActivity:
		return "USER_ACTIVITY"
	}
	return ""
}

// Change is a transition of one user's presence, with their state right
// after it.
type Change struct {
	Kind  Kind
	State State
}

// Update is a user's own change of their presence (updatePresence); nil
// fields stay as they are, "" clears a field.
type Update struct {
	// Status is Online or Away. Away set this way sticks — activity does not
	// end it — until Online is set or the user goes OFFLINE; the automatic
	// AWAY of an idle user ends with any activity.
	Status        *Status
	CurrentPage   *string
	ActiveTask    *string
	ActiveProject *string
}

// Errors of Update.
var (
	// ErrOffline: the user has no connection (and their grace is over), so
	// there is no presence to update.
	ErrOffline = errors.New("presence: user is offline")
	// ErrStatus: the status cannot be set (OFFLINE, or unknown).
	ErrStatus = errors.New("presence: status must be ONLINE or AWAY")
)

// Presence tracks every user's presence. Implementations are safe for
// concurrent use. Every method may be called for any user id; ids are
// not checked against the store.
type Presence interface {
	// Connect records that connection connID of userID opened; it is
	// activity. Connecting an id already connected does nothing.
	Connect(ctx context.Context, userID, connID string) error
	// Disconnect records that connection connID of userID closed. An
	// unknown connection is ignored. When it was the user's last, they go
	// OFFLINE after OfflineGrace unless a connection opens meanwhile.
	Disconnect(ctx context.Context, userID, connID string) error
	// Touch records activity of userID (any operation): LastSeen moves, and
	// an automatically AWAY user is ONLINE again. It is on every
	// operation's path, so it must be cheap.
	Touch(ctx context.Context, userID string) error
	// Update applies the user's own change and returns their state. A user
	// who is OFFLINE gets ErrOffline, a status other than ONLINE or AWAY
	// ErrStatus; nothing changes then. It is activity.
	Update(ctx context.Context, userID string, u Update) (State, error)
	// Get returns the users' states, in the order asked; a user never seen
	// is OFFLINE with a zero LastSeen.
	Get(ctx context.Context, userIDs ...string) ([]State, error)
	// Close stops the implementation's timers; later calls may fail.
	Close() error
}

// Sweeper is a Presence whose timers (grace, away, coalescing) run when
// Sweep is called: Options.SweepEvery calls it periodically, tests call it
// after moving their Clock.
type Sweeper interface {
	// Sweep applies every transition due at Clock.Now().
	Sweep(ctx context.Context) error
}

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real time.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Options configures a Presence implementation.
type Options struct {
	// OfflineGrace is how long after a user's last connection closes before
	// they go OFFLINE (PRESENCE_OFFLINE_GRACE). Default 30s.
	OfflineGrace time.Duration
	// AwayAfter is how long a user may be idle — no operation, no presence
	// update — before they are AWAY (PRESENCE_AWAY_AFTER). Default 5m.
	AwayAfter time.Duration
	// ActivityInterval is the least time between two KindActivity changes
	// of one user (PRESENCE_ACTIVITY_INTERVAL): changes within it are
	// coalesced into one carrying the latest state. Default 1s.
	ActivityInterval time.Duration
	// SweepEvery is how often the implementation runs Sweep on its own
	// goroutine. Zero: a period fine enough for the durations above (a
	// quarter of the smallest, between 5ms and 250ms); negative: never (the
	// caller calls Sweep, as tests with a fake Clock do).
	SweepEvery time.Duration
	// Clock; nil means SystemClock.
	Clock Clock
	// OnChange receives every change, in the order they happen, while the
	// implementation holds its lock: it must only queue (a Relay's Handle)
	// and must not call back into the Presence. Nil drops them.
	OnChange func(Change)
}

// Defaults for zero Options fields.
const (
	DefaultOfflineGrace     = 30 * time.Second
	DefaultAwayAfter        = 5 * time.Minute
	DefaultActivityInterval = time.Second
)

// WithDefaults returns o with its zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.OfflineGrace <= 0 {
		o.OfflineGrace = DefaultOfflineGrace
	}
	if o.AwayAfter <= 0 {
		o.AwayAfter = DefaultAwayAfter
	}
	if o.ActivityInterval <= 0 {
		o.ActivityInterval = DefaultActivityInterval
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = min(max(min(o.OfflineGrace, o.AwayAfter, o.ActivityInterval)/4, 5*time.Millisecond), 250*time.Millisecond)
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.OnChange == nil {
		o.OnChange = func(Change) {}
	}
	return o
}
