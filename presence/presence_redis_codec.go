package presence

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A user's record in Redis is one hash. Times are Unix microseconds
// (Lua's numbers are doubles: nanoseconds since 1970 do not fit exactly);
// an absent field is a zero time. Connections are fields "c:<connID>"
// whose value is the instance holding them.
const (
	fOffline  = "off"
	fManual   = "ma"
	fIdle     = "idle"
	fGraceEnd = "ge"
	fLastSeen = "seen"
	fPage     = "page"
	fTask     = "task"
	fProject  = "proj"
	fLastEmit = "le"
	fPending  = "pend"
	fConnPfx  = "c:"
)

// record is a decoded hash: the user Memory's logic works on, and which
// instance holds each of their connections.
type record struct {
	u      *user
	owners map[string]string // connID → instance
}

func decode(userID string, h map[string]string) record {
	u := &user{id: userID, offline: h[fOffline] != "0"} // absent: never connected
	u.manualAway = h[fManual] == "1"
	u.idle = h[fIdle] == "1"
	u.pending = h[fPending] == "1"
	u.graceEnd = parseMicros(h[fGraceEnd])
	u.lastSeen = parseMicros(h[fLastSeen])
	u.lastEmit = parseMicros(h[fLastEmit])
	u.page, u.task, u.project = h[fPage], h[fTask], h[fProject]
	owners := make(map[string]string)
	for k, v := range h {
		if c, ok := strings.CutPrefix(k, fConnPfx); ok {
			owners[c] = v
			u.conns = append(u.conns, c)
		}
	}
	slices.Sort(u.conns)
	return record{u: u, owners: owners}
}

// encode is the hash of r; owner is the instance of connections not in
// r.owners (opened by this call).
func encode(r record, owner string) map[string]string {
	u := r.u
	h := map[string]string{
		fOffline: flag(u.offline), fManual: flag(u.manualAway), fIdle: flag(u.idle), fPending: flag(u.pending),
	}
	setTime := func(f string, t time.Time) {
		if !t.IsZero() {
			h[f] = strconv.FormatInt(t.UnixMicro(), 10)
		}
	}
	setTime(fGraceEnd, u.graceEnd)
	setTime(fLastSeen, u.lastSeen)
	setTime(fLastEmit, u.lastEmit)
	setStr := func(f, s string) {
		if s != "" {
			h[f] = s
		}
	}
	setStr(fPage, u.page)
	setStr(fTask, u.task)
	setStr(fProject, u.project)
	for _, c := range u.conns {
		o, ok := r.owners[c]
		if !ok {
			o = owner
		}
		h[fConnPfx+c] = o
	}
	return h
}

// connDiff is the connections opened (with their instance) and closed
// (with the instance that held them) between two encodings.
func connDiff(before, after map[string]string) (opened, closed map[string]string) {
	opened, closed = map[string]string{}, map[string]string{}
	for k, v := range after {
		if c, ok := strings.CutPrefix(k, fConnPfx); ok && before[k] != v {
			opened[c] = v
		}
	}
	for k, v := range before {
		if c, ok := strings.CutPrefix(k, fConnPfx); ok && after[k] != v {
			closed[c] = v
		}
	}
	return opened, closed
}

func sameHash(a, b map[string]string) bool { return maps.Equal(a, b) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseMicros(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// micros is t on the record's resolution, as a sorted-set score.
func micros(t time.Time) float64 { return float64(t.UnixMicro()) }

// fixedClock is a Clock stopped at one instant: a transaction's logic
// runs at the time the transaction read.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// logic runs Memory's transitions on one decoded user: a Memory holding
// only that user, at a fixed time, collecting the changes it reports
// instead of emitting them. So both implementations decide every
// transition with the same code; Redis adds where the state lives and
// who may write it.
func (r *Redis) logic(u *user, now time.Time, out *[]Change) *Memory {
	return &Memory{
		opts:  r.opts,
		clock: fixedClock(now),
		emit:  func(ch Change) { *out = append(*out, ch) },
		users: map[string]*user{u.id: u},
	}
}
