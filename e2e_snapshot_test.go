package main

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/store"
)

// pausable is a client's TCP connection whose reads can be held: a client
// that stops reading, so the server's frames for it pile up in its queue
// and are rendered only when it reads again.
type pausable struct {
	net.Conn
	mu     sync.Mutex
	resume chan struct{} // nil: reading; otherwise closed by Resume
}

func (p *pausable) Read(b []byte) (int, error) {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return p.Conn.Read(b)
}

func (p *pausable) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

func (p *pausable) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

// dialPausable opens a socket with a small receive buffer whose reads can
// be paused.
func (e *env) dialPausable(ctx context.Context) (*wsclient.Client, *pausable) {
	e.t.Helper()
	var pc *pausable
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			pc = &pausable{Conn: conn}
			return pc, nil
		},
	})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { pc.Resume(); c.Close() })
	return c, pc
}

// TestLateRenderShowsWhatHappened is the late-render row of issue 5: bob's
// socket is backed up while he is removed from a project and frank is
// added. The events queued for bob are rendered when his socket drains,
// after frank joined — yet each shows the project's members as they were
// when it was committed, so bob never sees frank (nor frank's email).
func TestLateRenderShowsWhatHappened(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "bob", "ops!")
	if _, err := e.m.Service().CreateUser(context.Background(), store.User{ID: "frank", Name: "Frank", Email: "frank@example.com"}); err != nil {
		t.Fatal(err)
	}
	p := e.createProject("alice", "P")
	e.addMember("ops", p, "bob") // an admin adds at once

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, pc := e.dialPausable(ctx)
	if err := c.Init(ctx, map[string]any{"token": e.token("bob")}); err != nil {
		t.Fatal(err)
	}
	// A query of bob's own: its events are rendered for him alone, when
	// his writer reaches them.
	sub, err := c.Subscribe(ctx, "late", `subscription Late($p: ID!) { projectUpdates(projectId: $p) {
		type project { id members { id name email online } } task { id d1: description d2: description d3: description d4: description d5: description d6: description d7: description d8: description } member { id email online } } }`, map[string]any{"p": p})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	pc.Pause()

	// Enough task events to fill bob's socket buffers (each renders 64 KB:
	// eight copies of its description) and leave the rest in the server's
	// queue for him (well under its 512 frames and 4 MiB of event data).
	const tasks = 250
	desc := strings.Repeat("x", 8000)
	for i := range tasks {
		e.do("alice", `mutation($in: CreateTaskInput!) { createTask(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"title": "t", "description": desc, "projectId": p}}, nil)
		_ = i
	}
	e.removeMember("ops", p, "bob")
	e.addMember("ops", p, "frank")
	time.Sleep(200 * time.Millisecond) // the server has the events of both changes
	pc.Resume()

	type user struct {
		ID     string
		Email  *string
		Online bool
	}
	var got []string
	for {
		r, err := sub.Next(ctx)
		if err != nil {
			if !isOperationError(err, "FORBIDDEN") {
				t.Fatalf("after %d events: want the subscription to end with FORBIDDEN, got %v", len(got), err)
			}
			break
		}
		if len(r.Errors) > 0 {
			t.Fatalf("event %d: errors %+v", len(got), r.Errors)
		}
		var d struct {
			ProjectUpdates struct {
				Type    string
				Project struct{ Members []user }
				Member  *user
			}
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		ev := d.ProjectUpdates
		if strings.Contains(string(r.Data), "frank") {
			t.Errorf("event %d (%s), rendered after frank joined, shows him: %s", len(got), ev.Type, r.Data)
		}
		var ids []string
		for _, m := range ev.Project.Members {
			ids = append(ids, m.ID)
		}
		want := []string{"alice", "bob"}
		if ev.Type == "PROJECT_MEMBER_REMOVED" {
			want = []string{"alice"} // after bob's removal
			if ev.Member == nil || ev.Member.ID != "bob" {
				t.Errorf("removal event's member: %s", r.Data)
			}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("event %d (%s): members %v, want %v as at its commit", len(got), ev.Type, ids, want)
		}
		got = append(got, ev.Type)
	}
	if len(got) != tasks+1 || got[tasks] != "PROJECT_MEMBER_REMOVED" {
		t.Fatalf("bob got %d events ending %v, want %d TASK_CREATED then PROJECT_MEMBER_REMOVED", len(got), got[max(0, len(got)-2):], tasks)
	}
}
