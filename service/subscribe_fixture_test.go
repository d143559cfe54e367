package service

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/postgres"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

// subFixture is a database, a hub fed from its log as an instance's feed
// feeds it (entries in seq order, FromLogEntry), and the subscription use
// cases over both. Writers are units of work that change the data and
// append the events the service would, so the log and the data move
// together as they do in production.
type subFixture struct {
	t     *testing.T
	st    store.Store
	hub   *realtime.Hub
	subs  *Subscriptions
	epoch string
	fed   atomic.Uint64 // the last seq enqueued on the hub
	// rights, if set, is what Rights returns (a demotion the operation
	// has not seen).
	rights atomic.Pointer[auth.Viewer]
	// charge, if set, is ChargeReplay.
	charge atomic.Pointer[func(ctx context.Context, userID string, entries uint64) error]
}

// backends runs fn against SQLite (a file: its readers and its writer are
// separate connections, as in production) and PostgreSQL.
func subBackends(t *testing.T, fn func(t *testing.T, f *subFixture)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, newSubFixture(t, func(ctx context.Context) (store.Store, error) {
			return sqlite.Open(ctx, filepath.Join(t.TempDir(), "taskpulse.db"))
		}))
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		fn(t, newSubFixture(t, func(ctx context.Context) (store.Store, error) {
			return postgres.Open(ctx, url, postgres.Options{})
		}))
	})
}

func newSubFixture(t *testing.T, open func(context.Context) (store.Store, error)) *subFixture {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // last: after everything below stopped
	ctx := context.Background()
	st, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	epoch, err := st.LogEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &subFixture{t: t, st: st, hub: realtime.NewHub(realtime.HubOptions{}), epoch: epoch}
	f.subs = NewSubscriptions(st, f.hub, SubscriptionOptions{Rights: func(_ context.Context, v auth.Viewer) (auth.Viewer, error) {
		if r := f.rights.Load(); r != nil {
			return *r, nil
		}
		return v, nil
	}, ChargeReplay: func(ctx context.Context, userID string, entries uint64) error {
		if c := f.charge.Load(); c != nil {
			return (*c)(ctx, userID, entries)
		}
		return nil
	}})
	t.Cleanup(func() {
		f.hub.Close()
		f.subs.Wait()
	})
	for _, u := range []store.User{{ID: "alice", Name: "Alice"}, {ID: "bob", Name: "Bob"}, {ID: "carol", Name: "Carol"}, {ID: "root", Name: "Root", Admin: true}} {
		if _, err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// startFeed moves the log to the hub until the test ends: what the feed
// package does, by polling.
func (f *subFixture) startFeed() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n := f.feedOnce(ctx); n == 0 {
				select {
				case <-ctx.Done():
				case <-time.After(time.Millisecond):
				}
			}
		}
	}()
	f.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// feedOnce enqueues the entries after the last one fed; it returns how
// many.
func (f *subFixture) feedOnce(ctx context.Context) int {
	entries, err := f.st.ReadLog(ctx, int64(f.fed.Load()), store.MaxLogRead)
	if err != nil {
		if ctx.Err() == nil {
			f.t.Errorf("feed: %v", err)
		}
		return 0
	}
	for _, e := range entries {
		ev, err := realtime.FromLogEntry(e, f.epoch)
		if err != nil {
			f.t.Errorf("feed: %v", err)
			return 0
		}
		f.hub.Enqueue(ev)
		f.fed.Store(uint64(e.Seq))
	}
	return len(entries)
}

// feedAll enqueues everything committed so far (without startFeed).
func (f *subFixture) feedAll() {
	for f.feedOnce(context.Background()) > 0 {
	}
}

// waitFed waits until the feed has enqueued seq.
func (f *subFixture) waitFed(seq uint64) {
	f.t.Helper()
	subWaitUntil(f.t, "the feed to reach the log's head", func() bool { return f.fed.Load() >= seq })
}

func subWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// commit runs one unit of work whose events are appended to the log, and
// returns the seq of its last entry.
func (f *subFixture) commit(fn func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error)) uint64 {
	f.t.Helper()
	var last *store.LogEntry
	err := f.st.Update(context.Background(), func(tx store.Tx) error {
		evs, err := fn(context.Background(), tx)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			e, err := realtime.ToLogEntry(ev)
			if err != nil {
				return err
			}
			tx.Append(e)
			last = e
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("commit: %v", err)
	}
	return uint64(last.Seq)
}

// subEvent builds an event as the service does: EventData as its Data.
func subEvent(typ string, data EventData, ctl *realtime.Control, rooms ...string) *realtime.Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return &realtime.Event{Type: typ, Rooms: rooms, Data: b, Time: store.Now(), Control: ctl}
}

func (f *subFixture) createProject(owner string) store.Project {
	var p store.Project
	f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		var err error
		p, err = tx.CreateProject(ctx, store.Project{Name: "P", OwnerID: owner})
		return []*realtime.Event{subEvent(ProjectCreated, EventData{Project: &p},
			&realtime.Control{Op: realtime.Join, UserID: owner, Room: realtime.RoomProject(p.ID)},
			realtime.RoomProject(p.ID), realtime.RoomUser(owner))}, err
	})
	return p
}

func (f *subFixture) addMember(projectID, userID string) uint64 {
	return f.membership(ProjectMemberAdded, realtime.Join, projectID, userID)
}

func (f *subFixture) removeMember(projectID, userID string) uint64 {
	return f.membership(ProjectMemberRemoved, realtime.Leave, projectID, userID)
}

// membership adds userID to the project (Join) or removes them (Leave),
// with the event the service publishes.
func (f *subFixture) membership(typ string, op realtime.ControlOp, projectID, userID string) uint64 {
	return f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		p, err := tx.Project(ctx, projectID)
		if err != nil {
			return nil, err
		}
		change := tx.AddProjectMember
		if op == realtime.Leave {
			change = tx.RemoveProjectMember
		}
		if _, err := change(ctx, projectID, userID); err != nil {
			return nil, err
		}
		return []*realtime.Event{subEvent(typ, EventData{Project: &p},
			&realtime.Control{Op: op, UserID: userID, Room: realtime.RoomProject(projectID)},
			realtime.RoomProject(projectID), realtime.RoomUser(userID))}, nil
	})
}

// teamOf creates a team of creator and the others.
func (f *subFixture) teamOf(creator string, others ...string) store.Team {
	var team store.Team
	f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if team, err = tx.CreateTeam(ctx, store.Team{Name: "T", CreatedBy: creator}); err != nil {
			return nil, err
		}
		for _, u := range others {
			if _, err := tx.AddTeamMember(ctx, team.ID, u); err != nil {
				return nil, err
			}
		}
		return []*realtime.Event{subEvent(TeamMemberAdded, EventData{Team: &team}, nil, realtime.RoomTeam(team.ID))}, nil
	})
	return team
}

// task creates a task in the project (owner: by), addressed as the
// service addresses task events.
func (f *subFixture) task(projectID, by, title string) uint64 {
	return f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		t, err := tx.CreateTask(ctx, store.Task{Title: title, ProjectID: projectID, UserID: by, Status: store.StatusTodo})
		return []*realtime.Event{subEvent(TaskCreated, EventData{Task: &t}, nil,
			realtime.RoomUser(by), realtime.RoomProject(projectID))}, err
	})
}

func (f *subFixture) notify(userID, msg string) uint64 {
	return f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		n, err := tx.CreateNotification(ctx, store.Notification{UserID: userID, Message: msg})
		return []*realtime.Event{subEvent(NotificationSent, EventData{Notification: &n}, nil, realtime.RoomUser(userID))}, err
	})
}

// cursor is the cursor of seq in this database's log.
func (f *subFixture) cursor(seq uint64) *string {
	c := realtime.Position{Epoch: f.epoch, Seq: seq}.Cursor()
	return &c
}

// head is the log's head.
func (f *subFixture) head() uint64 {
	h, err := f.st.LogHead(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return uint64(h)
}

// expected lists the seqs after from that a subscription listening to
// rooms with accept would be delivered, by reading the whole log.
func (f *subFixture) expected(from uint64, accept func(*realtime.Event) bool, rooms ...string) []uint64 {
	f.t.Helper()
	var out []uint64
	for at := int64(from); ; {
		entries, err := f.st.ReadLog(context.Background(), at, store.MaxLogRead)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(entries) == 0 {
			return out
		}
		for _, e := range entries {
			at = e.Seq
			ev, err := realtime.FromLogEntry(e, f.epoch)
			if err != nil {
				f.t.Fatal(err)
			}
			for _, r := range ev.Rooms {
				if slices.Contains(rooms, r) && accept(ev) {
					out = append(out, ev.Seq)
					break
				}
			}
		}
	}
}

func subViewer(userID string, admin bool) context.Context {
	return auth.WithViewer(context.Background(), auth.Viewer{UserID: userID, Admin: admin})
}

// subClient is a subscriber's end: what its connection would send, in
// order. Replays go through DeliverWait, which waits for gate while it is
// set (a subClient not reading yet).
type subClient struct {
	mu     sync.Mutex
	evs    []*realtime.Event
	ends   int
	endErr error
	late   int // deliveries after End

	gate  chan struct{}
	waits atomic.Int64
}

func (c *subClient) Deliver(p *realtime.Payload) {
	if _, err := p.Bytes(); err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ends > 0 {
		c.late++
	}
	c.evs = append(c.evs, p.Event)
}

func (c *subClient) DeliverWait(ctx context.Context, p *realtime.Payload) error {
	c.waits.Add(1)
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.Deliver(p)
	return nil
}

func (c *subClient) End(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ends++
	c.endErr = err
}

func (c *subClient) seqs() []uint64 {
	return eachEvent(c, func(ev *realtime.Event) uint64 { return ev.Seq })
}

func (c *subClient) types() []string {
	return eachEvent(c, func(ev *realtime.Event) string { return ev.Type })
}

// eachEvent is f of each event c received, in order.
func eachEvent[T any](c *subClient, f func(*realtime.Event) T) []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]T, len(c.evs))
	for i, ev := range c.evs {
		out[i] = f(ev)
	}
	return out
}

func (c *subClient) ended() (int, error, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ends, c.endErr, c.late
}

// subEncoder renders an event as its type.
type subEncoder struct{}

func (subEncoder) Encode(ev *realtime.Event) ([]byte, error) { return []byte(ev.Type), nil }

func (c *subClient) target() *realtime.Target {
	return &realtime.Target{Sink: c, Encoder: subEncoder{}}
}
