package service

import (
	"encoding/json"
	"time"

	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// The event model: what every event taskpulse publishes is called and
// carries. An event is appended to the log in the unit of work of its
// change (Service.update) or, for presence, published live.

// Event type names (GraphQL EventType values).
const (
	TaskCreated          = "TASK_CREATED"
	TaskUpdated          = "TASK_UPDATED"
	TaskDeleted          = "TASK_DELETED"
	TaskAssigned         = "TASK_ASSIGNED"
	ProjectCreated       = "PROJECT_CREATED"
	ProjectUpdated       = "PROJECT_UPDATED"
	ProjectDeleted       = "PROJECT_DELETED"
	ProjectMemberAdded   = "PROJECT_MEMBER_ADDED"
	ProjectMemberRemoved = "PROJECT_MEMBER_REMOVED"
	TeamMemberAdded      = "TEAM_MEMBER_ADDED"
	TeamMemberRemoved    = "TEAM_MEMBER_REMOVED"
	NotificationSent     = "NOTIFICATION_SENT"
	SystemUpdate         = "SYSTEM_UPDATE"
)

// Presence event types (GraphQL EventType values): ephemeral, never in the
// log.
const (
	UserOnline   = "USER_ONLINE"
	UserOffline  = "USER_OFFLINE"
	UserActivity = "USER_ACTIVITY"
)

// UserRightsChanged is the internal event of a demotion or a disabling: it
// is delivered to no one (it has no rooms) and carries only its control,
// which every instance's hub applies in log order.
const UserRightsChanged = "USER_RIGHTS_CHANGED"

// UserDisconnected is the internal event of disconnectUser: no room, only
// its Disconnect control, which every instance applies.
const UserDisconnected = "USER_DISCONNECTED"

// IsPresenceEvent reports whether typ is a USER_* presence event type.
func IsPresenceEvent(typ string) bool {
	return typ == UserOnline || typ == UserOffline || typ == UserActivity
}

// EventData is the JSON payload of every event taskpulse publishes. An
// event is what happened: it carries a snapshot of everything it shows,
// taken in the unit of work of its change (Snapshot), so rendering it never
// reads the store and a recipient sees only what they could have seen when
// it happened, however late their copy is rendered. That also makes an
// event self-contained, as a durable log needs.
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
	// Snapshot is filled by seal; a builder sets parts of it only for what
	// the change itself destroys (the members of a deleted project).
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
// dropped. Its Data is encoded by seal, once the snapshot is taken; until
// then data travels as the event's decoded form (Event.Preset).
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
