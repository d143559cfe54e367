package realtime

import (
	"encoding/json"
	"fmt"

	"github.com/taskpulse/taskpulse/store"
)

// ToLogEntry is the log entry that carries ev in the durable log: the
// service appends it in the unit of work that makes the change, and every
// instance turns it back into an Event (FromLogEntry) once the database has
// numbered it. ev must be valid to publish (a type, and rooms or a control)
// and must not be ephemeral: ephemeral events never enter the log.
func ToLogEntry(ev *Event) (*store.LogEntry, error) {
	if err := validateEvent(ev); err != nil {
		return nil, err
	}
	if ev.Ephemeral {
		return nil, fmt.Errorf("realtime: ephemeral event %s has no place in the durable log", ev.Type)
	}
	e := &store.LogEntry{Type: ev.Type, Rooms: ev.Rooms, Data: ev.Data, At: ev.Time}
	if ev.Control != nil {
		b, err := json.Marshal(ev.Control)
		if err != nil {
			return nil, fmt.Errorf("realtime: encoding control of %s: %w", ev.Type, err)
		}
		e.Control = b
	}
	return e, nil
}

// FromLogEntry is the event a numbered log entry of epoch carries, with its
// place in the log (Seq, Epoch, Cursor) set. A malformed control is an
// error: an instance must not apply half of a membership change.
func FromLogEntry(e store.LogEntry, epoch string) (*Event, error) {
	if e.Seq <= 0 {
		return nil, fmt.Errorf("realtime: log entry %s has no seq", e.Type)
	}
	ev := &Event{Type: e.Type, Rooms: e.Rooms, Data: e.Data, Time: e.At}
	if len(e.Control) > 0 {
		var c Control
		if err := json.Unmarshal(e.Control, &c); err != nil {
			return nil, fmt.Errorf("realtime: log entry %d: control: %w", e.Seq, err)
		}
		if err := validateControl(&c); err != nil {
			return nil, fmt.Errorf("realtime: log entry %d: %w", e.Seq, err)
		}
		ev.Control = &c
	}
	pos := Position{Epoch: epoch, Seq: uint64(e.Seq)}
	ev.Seq, ev.Epoch, ev.Cursor = pos.Seq, pos.Epoch, pos.Cursor()
	return ev, nil
}
