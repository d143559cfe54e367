package realtime

// DisconnectIP closes every connection whose client address
// (ConnInfo.IP) is ip with code and reason, and returns how many it
// closed. It looks at every connection — a block of an address is rare;
// the registry keeps no index by address for it.
func (r *Registry) DisconnectIP(ip string, code int, reason string) int {
	r.mu.Lock()
	conns := make([]Conn, 0, len(r.byID))
	for _, reg := range r.byID {
		conns = append(conns, reg.c)
	}
	r.mu.Unlock()
	// Info is a call into the connection: never under the lock.
	n := 0
	for _, c := range conns {
		if c.Info().IP == ip {
			c.CloseWith(code, reason)
			n++
		}
	}
	return n
}
