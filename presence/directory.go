package presence

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Directory is the list of open connections every instance sharing the
// presence reads: the `connections(userId)` query across instances. A
// connection is in it while presence counts it open — from Open until its
// Disconnect, or until its instance is found dead — so the two never
// disagree.
//
// The instance holding a connection knows its activity best; it reports
// it (Active) from time to time, and a reader elsewhere sees it as of the
// last report.
type Directory interface {
	// Open is Connect for c.UserID and c.ID, recording c's description in
	// the same step. Opening an open connection updates its description.
	Open(ctx context.Context, c Conn) error
	// Active records the connections' latest activity (a time earlier
	// than the one recorded is ignored), and returns those the directory
	// does not hold open: closed meanwhile, or lost (a Redis that
	// restarted empty) — the caller may Open them again.
	Active(ctx context.Context, acts []Activity) (missing []Activity, err error)
	// Conns lists userID's open connections, oldest first (ConnectedAt,
	// then ID). A connection opened by Connect, not Open, has only its ID,
	// UserID and Instance.
	Conns(ctx context.Context, userID string) ([]Conn, error)
}

// Conn describes an open connection (GraphQL Connection).
type Conn struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	// Instance holds the connection (RedisOptions.InstanceID); "" in
	// Memory, where every connection is this process's.
	Instance     string    `json:"instance,omitempty"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActivity time.Time `json:"lastActivity"`
	UserAgent    string    `json:"userAgent,omitempty"`
	IP           string    `json:"ip,omitempty"`
	Transport    string    `json:"transport,omitempty"`
}

// Activity is a connection's latest activity, as its instance reports it.
type Activity struct {
	UserID, ConnID string
	At             time.Time
}

// sortConns orders connections oldest first, as Conns returns them.
func sortConns(cs []Conn) {
	slices.SortFunc(cs, func(a, b Conn) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
