package realtime

import "github.com/taskpulse/taskpulse/errs"

// lostOp is the hub-internal control of Lost. It is not a ControlOp a log
// entry may carry (validateControl refuses it), so only this instance's
// feed can end every subscription.
const lostOp ControlOp = 255

// Lost tells the hub that the log entries after from up to and including
// to will never reach it (this instance fell behind the retention of the
// log it follows). Every subscription that would have had to receive them
// — all those registered when the gap is dispatched — ends with
// CURSOR_EXPIRED: its client refetches and subscribes again, rather than
// missing changes in silence. Subscriptions anchored at or after to are
// unaffected. Lost is queued like an event, so it takes effect in log
// order.
func (h *Hub) Lost(from, to uint64) {
	h.Enqueue(&Event{Type: "LOG_GAP", Seq: to, Control: &Control{Op: lostOp}})
}

// lostLocked ends every subscription anchored before the gap.
func (h *Hub) lostLocked(pos uint64) {
	for _, rm := range h.rooms {
		h.scratch = append(h.scratch, rm.subs...)
	}
	for _, subs := range h.users {
		h.scratch = append(h.scratch, subs...)
	}
	for _, s := range h.scratch {
		if pos > s.after {
			h.endLocked(s, errs.E(errs.CursorExpired, "this server missed events you subscribed to; refetch, then subscribe again"))
		}
	}
	clear(h.scratch)
	h.scratch = h.scratch[:0]
}
