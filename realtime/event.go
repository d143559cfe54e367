package realtime

import (
	"sync"
	"time"
)

// Room names. Events are addressed to rooms; subscriptions listen to rooms.
const RoomAll = "all"

// RoomUser is the room of one user's private events.
func RoomUser(id string) string { return "user:" + id }

// RoomProject is the room of a project's members.
func RoomProject(id string) string { return "project:" + id }

// RoomTeam is the room of a team's members.
func RoomTeam(id string) string { return "team:" + id }

// ControlOp is a membership change a hub applies in log order.
type ControlOp uint8

// Membership changes.
const (
	// Join adds Room to the following subscriptions of UserID; applied
	// before the event is delivered, so the new member receives it.
	Join ControlOp = iota + 1
	// Leave removes Room from UserID's following subscriptions and ends
	// UserID's fixed subscriptions on Room with errs.Forbidden; applied after
	// the event is delivered, so the leaving member sees why.
	Leave
	// CloseRoom removes Room from every following subscription and
	// completes every fixed subscription on Room; applied after delivery.
	CloseRoom
	// Demote ends UserID's privileged subscriptions (granted by admin
	// rights, not by membership: SubscribeOptions.Privileged) with
	// errs.Forbidden; applied after delivery.
	Demote
	// Disconnect closes every connection of UserID on this instance
	// (HubOptions.Registry) with Code and Reason; applied after delivery.
	Disconnect
)

// Control is a change of membership or rights carried by an event: every
// instance's hub applies it in log order.
type Control struct {
	Op     ControlOp `json:"op"`
	UserID string    `json:"userId,omitempty"` // all but CloseRoom
	Room   string    `json:"room,omitempty"`   // Join, Leave, CloseRoom
	// Disconnect: the close code and reason the connections get.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Event is one committed change, addressed to rooms. The publisher fills
// Type, Rooms, Data, Time and Control; the broker sets Seq, Epoch and
// Cursor. Events are immutable once published.
type Event struct {
	Type  string    `json:"type"`  // GraphQL EventType name, e.g. TASK_CREATED
	Rooms []string  `json:"rooms"` // a subscriber in several gets it once
	Data  []byte    `json:"data"`  // JSON payload, opaque to realtime
	Time  time.Time `json:"time"`  // commit time
	// Control, when set, is applied by every hub in log order.
	Control *Control `json:"control,omitempty"`
	// Ephemeral events (presence) are live news, not history: they take a
	// place in the log like any event, but a durable log need not keep
	// them, and a resume need not replay them (the next one carries the
	// whole state).
	Ephemeral bool `json:"ephemeral,omitempty"`

	Seq    uint64 `json:"seq"`
	Epoch  string `json:"epoch"`
	Cursor string `json:"cursor"`

	decodeOnce sync.Once
	decoded    any
	decodeErr  error
}

// Preset makes v what Decoded returns, for an event built in this process
// from v, whose Data is (or will be, before it is published) v's encoding:
// the instance that publishes it then renders it without decoding Data.
// Call it before Decoded is first called.
func (e *Event) Preset(v any) {
	e.decodeOnce.Do(func() { e.decoded = v })
}

// Decoded returns decode(e.Data), computed once per event per instance
// however many encoders ask: decode must be the same function every time.
func (e *Event) Decoded(decode func([]byte) (any, error)) (any, error) {
	e.decodeOnce.Do(func() { e.decoded, e.decodeErr = decode(e.Data) })
	return e.decoded, e.decodeErr
}
