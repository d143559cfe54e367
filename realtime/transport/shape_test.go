package transport

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/taskpulse/taskpulse/graph"
	"github.com/taskpulse/taskpulse/graph/model"
	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

func TestRenderVariables(t *testing.T) {
	cases := []struct {
		name, query string
		want        []string
	}{
		{"root argument only", `subscription($p: ID!, $a: String) { projectUpdates(projectId: $p, after: $a) { type } }`, []string{}},
		{"include in the selection", `subscription($p: ID!, $x: Boolean!) { projectUpdates(projectId: $p) { type project @include(if: $x) { id } } }`, []string{"x"}},
		{"skip on the root field", `subscription($p: ID!, $x: Boolean!) { projectUpdates(projectId: $p) @skip(if: $x) { type } }`, []string{"x"}},
		{"nested argument", `subscription($p: ID!, $n: Int) { projectUpdates(projectId: $p) { project { members(first: $n) { id } } } }`, []string{"n"}},
		{"nested list and object argument", `subscription { a { b(x: [$l], y: {z: $o}) } }`, []string{"l", "o"}},
		{"fragment", `subscription($p: ID!, $x: Boolean!) { ...F } fragment F on Subscription { projectUpdates(projectId: $p) { ... on ProjectEvent @include(if: $x) { type } } }`, []string{"x"}},
		{"fragment used at the root and below", `subscription($p: ID!) { ...F a { ...F } } fragment F on X { f(id: $p) }`, []string{"p"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := parser.ParseQuery(&ast.Source{Input: tc.query})
			if err != nil {
				t.Fatal(err)
			}
			got := renderVariables(doc, doc.Operations[0])
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("renderVariables = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShapeKey(t *testing.T) {
	exec := executor.New(graph.NewExecutableSchema(graph.Config{Resolvers: &testRoot{}}))
	key := func(query, op string, vars map[string]any) shapeKey {
		t.Helper()
		rc, errs := exec.CreateOperationContext(graphql.StartOperationTrace(context.Background()),
			&graphql.RawParams{Query: query, OperationName: op, Variables: vars})
		if errs != nil {
			t.Fatalf("%s: %v", query, errs)
		}
		k, ok := shapeKeyOf(exec, rc)
		if !ok {
			t.Fatal("not shareable")
		}
		return k
	}
	const byID = `subscription($p: ID!, $a: String) { projectUpdates(projectId: $p, after: $a) { type project { id } } }`
	const incl = `subscription($p: ID!, $x: Boolean!) { projectUpdates(projectId: $p) { type project @include(if: $x) { id } } }`
	const two = `subscription A { systemUpdates { type } } subscription B { systemUpdates { type } }`
	same := []struct {
		name string
		a, b shapeKey
	}{
		{"root arguments differ", key(byID, "", map[string]any{"p": "1"}), key(byID, "", map[string]any{"p": "2", "a": "c9"})},
		{"same include value", key(incl, "", map[string]any{"p": "1", "x": true}), key(incl, "", map[string]any{"p": "2", "x": true})},
	}
	for _, c := range same {
		if c.a != c.b {
			t.Errorf("%s: different shapes, want one", c.name)
		}
	}
	different := []struct {
		name string
		a, b shapeKey
	}{
		{"include value differs", key(incl, "", map[string]any{"p": "1", "x": true}), key(incl, "", map[string]any{"p": "1", "x": false})},
		{"selection differs", key(byID, "", map[string]any{"p": "1"}), key(`subscription($p: ID!, $a: String) { projectUpdates(projectId: $p, after: $a) { type } }`, "", map[string]any{"p": "1"})},
		{"operation differs", key(two, "A", nil), key(two, "B", nil)},
		{"literal root argument differs", key(`subscription { projectUpdates(projectId: "1") { type } }`, "", nil), key(`subscription { projectUpdates(projectId: "2") { type } }`, "", nil)},
	}
	for _, c := range different {
		if c.a == c.b {
			t.Errorf("%s: one shape, want two", c.name)
		}
	}
}

// TestEncodeOnce: 50 sockets subscribe the same query for 50 projects;
// each event is rendered once for all of them.
func TestEncodeOnce(t *testing.T) {
	h := newHarness(t, nil)
	const n = 50
	const q = `subscription($p: ID!) { projectUpdates(projectId: $p) { type project { id name } } }`
	subs := make([]*wsclient.Sub, n)
	rooms := make([]string, n)
	for i := range n {
		c := h.connect(t, fmt.Sprintf("user%d", i))
		p := fmt.Sprintf("p%d", i)
		subs[i] = subscribe(t, c, "s", q, map[string]any{"p": p})
		rooms[i] = realtime.RoomProject(p)
	}
	if st := h.ws.Stats(); st.Subscriptions != n || st.Shapes != 1 {
		t.Fatalf("stats = %+v, want %d subscriptions sharing 1 shape", st, n)
	}

	const events = 3
	for e := range events {
		h.publish(t, "PROJECT_UPDATED", rooms, eventData{Project: projectP(fmt.Sprint("shared", e))}, nil)
	}
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range events {
				r, err := s.Next(testCtx(t))
				want := fmt.Sprintf(`{"projectUpdates":{"type":"PROJECT_UPDATED","project":{"id":"shared%d","name":"Project shared%d"}}}`, e, e)
				if err != nil || string(r.Data) != want {
					t.Errorf("sub %d event %d: %s, %v; want %s", i, e, r.Data, err, want)
				}
			}
		}()
	}
	wg.Wait()
	if got := h.root.renders.Load(); got != events {
		t.Errorf("rendered %d times for %d events to %d sockets, want once per event", got, events, n)
	}

	// A different selection is a second shape: two renderings per event.
	c := h.connect(t, "other")
	other := subscribe(t, c, "s", `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`, map[string]any{"p": "p0"})
	if st := h.ws.Stats(); st.Shapes != 2 {
		t.Fatalf("shapes = %d, want 2", st.Shapes)
	}
	before := h.root.renders.Load()
	h.publish(t, "PROJECT_UPDATED", rooms, eventData{Project: projectP("x")}, nil)
	if r := next(t, other); string(r.Data) != `{"projectUpdates":{"type":"PROJECT_UPDATED"}}` {
		t.Errorf("other shape: %s", r.Data)
	}
	for _, s := range subs {
		next(t, s)
	}
	if got := h.root.renders.Load() - before; got != 2 {
		t.Errorf("rendered %d times for 2 shapes, want 2", got)
	}

	// Shapes go when their last subscription goes.
	if err := other.Complete(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "shape released", func() bool { return h.ws.Stats().Shapes == 1 })
}

// TestRenderErrorsReachClients: an error while rendering (here: a
// non-null field the event lacks) is part of the one payload.
func TestRenderErrorsReachClients(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	s := subscribe(t, c, "s", `subscription { taskUpdates { type task { id } } }`, nil)
	h.publish(t, "TASK_UPDATED", []string{realtime.RoomUser("alice")}, eventData{}, nil) // no task
	r, err := s.Next(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) != 1 || r.Errors[0].Code() != "INTERNAL" || string(r.Data) != `{"taskUpdates":null}` {
		t.Errorf("result = %s %+v, want null data and one INTERNAL error", r.Data, r.Errors)
	}
}

// TestShapeConfirm: a shape renders with the operation context of its
// first live subscription, not that of a creator whose subscribe failed.
func TestShapeConfirm(t *testing.T) {
	exec := executor.New(graph.NewExecutableSchema(graph.Config{Resolvers: &testRoot{}}))
	rcFor := func(p string) *graphql.OperationContext {
		rc, errs := exec.CreateOperationContext(graphql.StartOperationTrace(context.Background()), &graphql.RawParams{
			Query: `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`, Variables: map[string]any{"p": p}})
		if errs != nil {
			t.Fatal(errs)
		}
		return rc
	}
	reg := NewShapes()
	failed, live, later := rcFor("forbidden"), rcFor("p1"), rcFor("p2")
	s := reg.acquire(exec, failed, time.Second, quiet)
	if reg.acquire(exec, live, time.Second, quiet) != s {
		t.Fatal("same shape expected")
	}
	reg.release(s) // the creator's subscribe failed
	reg.confirm(s, live)
	reg.confirm(s, later)
	if s.rc.Load() != live {
		t.Error("the shape does not render with its first live subscription's context")
	}
	reg.release(s)
	if reg.len() != 0 {
		t.Error("shape not released")
	}
}

// TestRenderDeadline: a rendering whose resolvers hang (here: a project's
// members, as a stuck store read) is cut at the write timeout, so it
// cannot hold the shared writers; every recipient — WebSocket or SSE —
// gets an INTERNAL error for that event, the failure is logged once for
// the event and shape, not once per recipient, and the subscriptions go
// on.
func TestRenderDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, func(o *Options) { o.WriteTimeout = timeout })
	const q = `subscription($p: ID!) { projectUpdates(projectId: $p) { type project { name members { id } } } }`
	vars := map[string]any{"p": "p1"}
	ws := []*wsclient.Sub{
		subscribe(t, h.connect(t, "alice"), "s", q, vars),
		subscribe(t, h.connect(t, "bob"), "s", q, vars),
	}
	sse := openSSE(t, h, http.MethodPost, body(q, vars), nil)
	eventually(t, "subscribed", func() bool { return h.ws.Stats().Subscriptions+h.sse.Stats().Subscriptions == 3 })
	if st := h.ws.Stats(); st.Shapes != 1 {
		t.Fatalf("shapes = %d, want the 3 subscriptions sharing 1", st.Shapes)
	}

	room := []string{realtime.RoomProject("p1")}
	h.publish(t, "PROJECT_UPDATED", room, eventData{Project: &model.Project{ID: "p1", Name: "slow"}}, nil)
	h.publish(t, "PROJECT_UPDATED", room, eventData{Project: &model.Project{ID: "p1", Name: "fine"}}, nil)
	const internal = `{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}],"data":null}`
	for _, s := range ws {
		r, err := s.Next(testCtx(t))
		if err != nil || len(r.Errors) != 1 || r.Errors[0].Code() != "INTERNAL" || r.Errors[0].Message != "internal error" || string(r.Data) != "null" {
			t.Errorf("stuck event: %s %+v, %v; want %s", r.Data, r.Errors, err, internal)
		}
		if r := next(t, s); string(r.Data) != `{"projectUpdates":{"type":"PROJECT_UPDATED","project":{"name":"fine","members":[]}}}` {
			t.Errorf("next event: %s", r.Data)
		}
	}
	sse.want("next", internal)
	sse.want("next", `{"data":{"projectUpdates":{"type":"PROJECT_UPDATED","project":{"name":"fine","members":[]}}}}`)
	if n := h.logs.count("rendering an event failed"); n != 1 {
		t.Errorf("the failed rendering was logged %d times for 3 recipients, want once", n)
	}
}

// TestShapesSharedAcrossTransports: the WebSocket and SSE transports of a
// server share one shape registry, so the same subscription over both is
// rendered once per event.
func TestShapesSharedAcrossTransports(t *testing.T) {
	h := newHarness(t, nil)
	ws := subscribe(t, h.connect(t, "alice"), "s", systemQuery, nil)
	sse := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
	eventually(t, "subscribed", func() bool { return h.sse.Stats().Subscriptions == 1 })
	if a, b := h.ws.Stats().Shapes, h.sse.Stats().Shapes; a != 1 || b != 1 {
		t.Fatalf("shapes: WebSocket %d, SSE %d; want the one shape both share", a, b)
	}
	before := h.root.renders.Load()
	h.system(t, "both")
	if got := systemMessage(t, next(t, ws)); got != "both" {
		t.Errorf("WebSocket got %q", got)
	}
	sse.want("next", `{"data":{"systemUpdates":{"type":"SYSTEM_UPDATE","cursor":"c1","message":"both"}}}`)
	if n := h.root.renders.Load() - before; n != 1 {
		t.Errorf("rendered %d times for one event to both transports, want once", n)
	}
}
