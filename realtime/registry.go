package realtime

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Conn is a live client connection as the registry sees it.
type Conn interface {
	// Info describes the connection; ID and UserID never change.
	Info() ConnInfo
	// CloseWith closes the connection with a WebSocket close code (SSE
	// ends its stream); it returns at once. The connection removes itself
	// from the registry once closed.
	CloseWith(code int, reason string)
}

// ConnInfo describes a connection (GraphQL type Connection).
type ConnInfo struct {
	ID           string
	UserID       string
	ConnectedAt  time.Time
	LastActivity time.Time
	UserAgent    string
	IP           string
	Transport    string
}

// Registry tracks this instance's live connections by user. It never calls
// a connection while holding its lock, so a connection may Remove itself
// from inside CloseWith.
type Registry struct {
	mu     sync.Mutex
	byID   map[string]registered
	byUser map[string]map[string]Conn // UserID → ID → connection
	// changed, when a Drain waits, is closed (and cleared) by the next Add
	// or Remove.
	changed chan struct{}
}

// registered is a connection and the user it was added under.
type registered struct {
	c      Conn
	userID string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byID:   make(map[string]registered),
		byUser: make(map[string]map[string]Conn),
	}
}

// Add registers c under c.Info().ID; a connection with the same ID is
// replaced.
func (r *Registry) Add(c Conn) {
	info := c.Info()
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byID[info.ID]; ok {
		r.removeLocked(info.ID, old.userID)
	}
	r.byID[info.ID] = registered{c: c, userID: info.UserID}
	u := r.byUser[info.UserID]
	if u == nil {
		u = make(map[string]Conn)
		r.byUser[info.UserID] = u
	}
	u[info.ID] = c
	r.notifyLocked()
}

// Remove unregisters the connection with c.Info().ID; unknown ones are
// ignored.
func (r *Registry) Remove(c Conn) {
	id := c.Info().ID
	r.mu.Lock()
	defer r.mu.Unlock()
	reg, ok := r.byID[id]
	if !ok {
		return
	}
	r.removeLocked(id, reg.userID)
	r.notifyLocked()
}

// notifyLocked wakes a waiting Drain.
func (r *Registry) notifyLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

func (r *Registry) removeLocked(id, userID string) {
	delete(r.byID, id)
	if u := r.byUser[userID]; u != nil {
		delete(u, id)
		if len(u) == 0 {
			delete(r.byUser, userID)
		}
	}
}

// ByUser describes userID's connections, oldest first.
func (r *Registry) ByUser(userID string) []ConnInfo {
	conns := r.userConns(userID)
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.Info())
	}
	slices.SortFunc(out, func(a, b ConnInfo) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Online reports whether userID has a connection here.
func (r *Registry) Online(userID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byUser[userID]) > 0
}

// Disconnect closes every connection of userID with code and reason and
// returns how many it closed.
func (r *Registry) Disconnect(userID string, code int, reason string) int {
	conns := r.userConns(userID)
	for _, c := range conns {
		c.CloseWith(code, reason)
	}
	return len(conns)
}

// Len returns the number of live connections.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

func (r *Registry) userConns(userID string) []Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.byUser[userID]
	out := make([]Conn, 0, len(u))
	for _, c := range u {
		out = append(out, c)
	}
	return out
}

// Drain closes every connection with code, spread evenly over spread so
// clients do not all reconnect at once (connection i of n closes at
// i·spread/n after the start), and returns when all are closed or ctx ends.
// Connections added meanwhile are closed at once. If ctx ends before the
// spread is over, the remaining connections are closed at once and Drain
// returns without waiting for them.
func (r *Registry) Drain(ctx context.Context, spread time.Duration, code int, reason string) {
	type entry struct {
		id string
		at time.Time
		c  Conn
	}
	r.mu.Lock()
	conns := make([]Conn, 0, len(r.byID))
	for _, reg := range r.byID {
		conns = append(conns, reg.c)
	}
	r.mu.Unlock()
	first := make([]entry, len(conns))
	for i, c := range conns {
		info := c.Info()
		first[i] = entry{id: info.ID, at: info.ConnectedAt, c: c}
	}
	// Oldest first: they have had the longest session.
	slices.SortFunc(first, func(a, b entry) int { return a.at.Compare(b.at) })

	asked := make(map[string]bool, len(first))
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	start := time.Now()
	for i, e := range first {
		if spread > 0 {
			due := start.Add(time.Duration(int64(spread) * int64(i) / int64(len(first))))
			if wait := time.Until(due); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					for _, rest := range first[i:] {
						rest.c.CloseWith(code, reason)
					}
					return
				}
			}
		}
		asked[e.id] = true
		e.c.CloseWith(code, reason)
	}

	for {
		r.mu.Lock()
		if len(r.byID) == 0 {
			r.mu.Unlock()
			return
		}
		var late []Conn
		for id, reg := range r.byID {
			if !asked[id] {
				asked[id] = true
				late = append(late, reg.c)
			}
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()

		for _, c := range late {
			c.CloseWith(code, reason)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
