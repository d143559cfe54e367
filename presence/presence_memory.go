package presence

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is the in-process Presence: every user's state in one map under
// one mutex, and one sweeper goroutine (none with a negative SweepEvery)
// for every timer of every user.
//
// Timers are a min-heap of (due time, user), armed lazily: a user has at
// most one live entry, for the earliest of their deadlines — the end of
// their grace, the moment they turn AWAY if still idle, the flush of a
// coalesced activity change. When it comes due the user's state is
// evaluated and the next entry pushed. Activity (Touch) only moves
// LastSeen: the AWAY entry, when it comes due, finds the user active and
// re-arms itself. So the hot path never touches the heap.
type Memory struct {
	opts  Options
	clock Clock
	emit  func(Change)

	mu     sync.Mutex
	users  map[string]*user
	timers timerHeap
	closed bool

	quit chan struct{}
	done chan struct{}
	once sync.Once
}

var (
	_ Presence = (*Memory)(nil)
	_ Sweeper  = (*Memory)(nil)
)

// user is one user's state. A user who goes OFFLINE keeps their record
// (LastSeen), without page, task or project; records are bounded by the
// number of users.
type user struct {
	id    string
	conns []string // open connection ids; few per user, so a slice
	// offline: no connection and the grace is over (or never connected).
	offline    bool
	manualAway bool      // set by Update(Status: Away); sticks until Online or OFFLINE
	idle       bool      // no activity for AwayAfter
	graceEnd   time.Time // when they go OFFLINE; set while connected to nothing
	lastSeen   time.Time
	page       string
	task       string
	project    string

	// descs describe open connections (Directory.Open), by id; a
	// connection opened by Connect has none.
	descs map[string]Conn

	lastEmit time.Time // last KindActivity or KindOnline change
	pending  bool      // an activity change waits for lastEmit+ActivityInterval
	// due is the time of this user's live timer entry; zero: none.
	due time.Time
}

// NewMemory returns an in-process Presence; Close stops its sweeper.
func NewMemory(opts Options) *Memory {
	opts = opts.WithDefaults()
	m := &Memory{
		opts:  opts,
		clock: opts.Clock,
		emit:  opts.OnChange,
		users: make(map[string]*user),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if opts.SweepEvery > 0 {
		go m.run(opts.SweepEvery)
	} else {
		close(m.done)
	}
	return m
}

func (m *Memory) run(every time.Duration) {
	defer close(m.done)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-tk.C:
			_ = m.Sweep(context.Background())
		}
	}
}

// Close stops the sweeper; pending timers never fire. Idempotent.
func (m *Memory) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.quit)
	})
	<-m.done
	return nil
}

// status is the user's status as others see it.
func (u *user) status() Status {
	switch {
	case u.offline:
		return Offline
	case u.manualAway || u.idle:
		return Away
	}
	return Online
}

func (u *user) state() State {
	return State{
		UserID: u.id, Status: u.status(), LastSeen: u.lastSeen,
		CurrentPage: u.page, ActiveTask: u.task, ActiveProject: u.project,
	}
}

// view is what a KindActivity change reports: a change of it is news,
// LastSeen alone is not.
type view struct {
	status              Status
	page, task, project string
}

func (u *user) view() view { return view{u.status(), u.page, u.task, u.project} }

// userLocked returns userID's record, creating an OFFLINE one.
func (m *Memory) userLocked(userID string) *user {
	u := m.users[userID]
	if u == nil {
		u = &user{id: userID, offline: true}
		m.users[userID] = u
	}
	return u
}

// Connect implements Presence.
func (m *Memory) Connect(_ context.Context, userID, connID string) error {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.connectLocked(m.userLocked(userID), connID, now)
	return nil
}

// connectLocked records that u's connection connID opened at now.
func (m *Memory) connectLocked(u *user, connID string, now time.Time) {
	if slices.Contains(u.conns, connID) {
		return
	}
	u.conns = append(u.conns, connID)
	u.graceEnd = time.Time{}
	before := u.view()
	u.lastSeen = now
	u.idle = false
	if u.offline {
		u.offline, u.manualAway, u.pending = false, false, false
		u.lastEmit = now
		m.emit(Change{Kind: KindOnline, State: u.state()})
	} else if u.view() != before {
		m.activityLocked(u, now)
	}
	m.armLocked(u)
}

// Disconnect implements Presence.
func (m *Memory) Disconnect(_ context.Context, userID, connID string) error {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u == nil {
		return nil
	}
	i := slices.Index(u.conns, connID)
	if i < 0 {
		return nil
	}
	u.conns = slices.Delete(u.conns, i, i+1)
	delete(u.descs, connID)
	if len(u.conns) == 0 {
		u.conns = nil
		u.graceEnd = now.Add(m.opts.OfflineGrace)
		m.armLocked(u)
	}
	return nil
}

// Touch implements Presence: one map lookup and a store of the time; the
// heap is touched only when an idle user comes back.
func (m *Memory) Touch(_ context.Context, userID string) error {
	now := m.clock.Now()
	m.mu.Lock()
	u := m.userLocked(userID)
	u.lastSeen = now
	if u.idle && !u.offline {
		before := u.view()
		u.idle = false
		if u.view() != before {
			m.activityLocked(u, now)
		}
		m.armLocked(u) // no AWAY entry is kept while idle
	}
	m.mu.Unlock()
	return nil
}

// Update implements Presence.
func (m *Memory) Update(_ context.Context, userID string, up Update) (State, error) {
	if up.Status != nil && *up.Status != Online && *up.Status != Away {
		return State{}, ErrStatus
	}
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u == nil || u.offline {
		return State{}, ErrOffline
	}
	before := u.view()
	u.lastSeen = now
	u.idle = false
	if up.Status != nil {
		u.manualAway = *up.Status == Away
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&u.page, up.CurrentPage)
	set(&u.task, up.ActiveTask)
	set(&u.project, up.ActiveProject)
	if u.view() != before {
		m.activityLocked(u, now)
	}
	m.armLocked(u)
	return u.state(), nil
}

// Get implements Presence.
func (m *Memory) Get(_ context.Context, userIDs ...string) ([]State, error) {
	out := make([]State, len(userIDs))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, id := range userIDs {
		if u := m.users[id]; u != nil {
			out[i] = u.state()
		} else {
			out[i] = State{UserID: id, Status: Offline}
		}
	}
	return out, nil
}

// activityLocked reports a change of u's view: at once if the last one
// went out ActivityInterval ago, otherwise when that interval ends (with
// the state of then).
func (m *Memory) activityLocked(u *user, now time.Time) {
	if now.Sub(u.lastEmit) >= m.opts.ActivityInterval {
		u.pending = false
		u.lastEmit = now
		m.emit(Change{Kind: KindActivity, State: u.state()})
		return
	}
	u.pending = true
}

// Sweep implements Sweeper: it applies every transition due now.
func (m *Memory) Sweep(context.Context) error {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	for len(m.timers) > 0 && !m.timers[0].at.After(now) {
		t := heap.Pop(&m.timers).(timer)
		u := t.u
		if !t.at.Equal(u.due) {
			continue // superseded by an earlier entry, which has run
		}
		u.due = time.Time{}
		m.evaluateLocked(u, now)
		m.armLocked(u)
	}
	if cap(m.timers) > 1024 && 4*len(m.timers) < cap(m.timers) {
		m.timers = slices.Clip(slices.Clone(m.timers)) // give back a burst's memory
	}
	return nil
}

// evaluateLocked applies u's transitions due at now.
func (m *Memory) evaluateLocked(u *user, now time.Time) {
	if u.offline {
		return
	}
	if len(u.conns) == 0 && !now.Before(u.graceEnd) {
		u.offline, u.idle, u.manualAway, u.pending = true, false, false, false
		u.page, u.task, u.project = "", "", ""
		u.graceEnd = time.Time{}
		m.emit(Change{Kind: KindOffline, State: u.state()})
		return
	}
	if !u.idle && now.Sub(u.lastSeen) >= m.opts.AwayAfter {
		before := u.view()
		u.idle = true
		if u.view() != before {
			m.activityLocked(u, now)
		}
	}
	if u.pending && now.Sub(u.lastEmit) >= m.opts.ActivityInterval {
		u.pending = false
		u.lastEmit = now
		m.emit(Change{Kind: KindActivity, State: u.state()})
	}
}

// nextDue is the earliest of u's deadlines; zero: none.
func (m *Memory) nextDue(u *user) time.Time {
	if u.offline {
		return time.Time{}
	}
	var due time.Time
	earliest := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	if len(u.conns) == 0 {
		earliest(u.graceEnd)
	}
	if !u.idle {
		earliest(u.lastSeen.Add(m.opts.AwayAfter))
	}
	if u.pending {
		earliest(u.lastEmit.Add(m.opts.ActivityInterval))
	}
	return due
}

// armLocked makes sure u has a timer entry at or before its next
// deadline. A later entry it supersedes stays in the heap and is skipped
// when it comes due.
func (m *Memory) armLocked(u *user) {
	at := m.nextDue(u)
	if at.IsZero() || !u.due.IsZero() && !at.Before(u.due) {
		return
	}
	u.due = at
	heap.Push(&m.timers, timer{at: at, u: u})
}

// timer is one heap entry.
type timer struct {
	at time.Time
	u  *user
}

// timerHeap is a min-heap of timers by time (container/heap).
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = timer{}
	*h = old[:n]
	return t
}
