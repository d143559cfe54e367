package transport

import (
	"time"

	"github.com/taskpulse/taskpulse/realtime"
)

var _ realtime.Renewable = (*wsConn)(nil)

// Renew implements realtime.Renewable: the connection's credentials were
// replaced (refreshConnection), so the sweeper closes it (4403) at
// expiresAt instead (zero: never). Its subscriptions are untouched. The
// connection is found by the operation through realtime.ConnFrom: every
// operation's context has it once connection_init succeeded.
func (c *wsConn) Renew(expiresAt time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || !c.initReceived {
		return false
	}
	// Under mu, as expire reads it: an expiry already being acted on has
	// closed the connection (closing), a later one sees the new deadline.
	var d int64
	if !expiresAt.IsZero() {
		d = expiresAt.UnixNano()
	}
	c.deadline.Store(d)
	return true
}
