package realtime

import "fmt"

// validateEvent checks what an event needs to enter the log or a hub
// (ToLogEntry, FromLogEntry).
func validateEvent(ev *Event) error {
	if ev == nil {
		return fmt.Errorf("realtime: publish: nil event")
	}
	if ev.Type == "" {
		return fmt.Errorf("realtime: publish: event has no type")
	}
	if len(ev.Rooms) == 0 && ev.Control == nil {
		return fmt.Errorf("realtime: publish %s: event has no room and no control", ev.Type)
	}
	for _, r := range ev.Rooms {
		if r == "" {
			return fmt.Errorf("realtime: publish %s: empty room name", ev.Type)
		}
	}
	if c := ev.Control; c != nil {
		if err := validateControl(c); err != nil {
			return fmt.Errorf("realtime: publish %s: %w", ev.Type, err)
		}
	}
	return nil
}

// validateControl checks that a control has what its op needs.
func validateControl(c *Control) error {
	switch c.Op {
	case Join, Leave, CloseRoom:
		if c.Room == "" {
			return fmt.Errorf("control has no room")
		}
		if c.Op != CloseRoom && c.UserID == "" {
			return fmt.Errorf("join or leave control has no user")
		}
	case Demote, Disconnect:
		if c.UserID == "" {
			return fmt.Errorf("demote or disconnect control has no user")
		}
		if c.Op == Disconnect && (c.Code < 1000 || c.Code > 4999) {
			return fmt.Errorf("disconnect control has close code %d, want 1000-4999", c.Code)
		}
	default:
		return fmt.Errorf("unknown control op %d", c.Op)
	}
	return nil
}
