package presence

import (
	"context"
	"slices"
)

var _ Directory = (*Memory)(nil)

// Open implements Directory.
func (m *Memory) Open(_ context.Context, c Conn) error {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.userLocked(c.UserID)
	m.connectLocked(u, c.ID, now)
	if u.descs == nil {
		u.descs = make(map[string]Conn)
	}
	c.Instance = ""
	u.descs[c.ID] = c
	return nil
}

// Active implements Directory.
func (m *Memory) Active(_ context.Context, acts []Activity) ([]Activity, error) {
	var missing []Activity
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range acts {
		u := m.users[a.UserID]
		if u == nil || !slices.Contains(u.conns, a.ConnID) {
			missing = append(missing, a)
			continue
		}
		if d, ok := u.descs[a.ConnID]; ok && a.At.After(d.LastActivity) {
			d.LastActivity = a.At
			u.descs[a.ConnID] = d
		}
	}
	return missing, nil
}

// Conns implements Directory.
func (m *Memory) Conns(_ context.Context, userID string) ([]Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u == nil {
		return []Conn{}, nil
	}
	out := make([]Conn, 0, len(u.conns))
	for _, id := range u.conns {
		c, ok := u.descs[id]
		if !ok {
			c = Conn{ID: id, UserID: userID}
		}
		out = append(out, c)
	}
	sortConns(out)
	return out, nil
}
