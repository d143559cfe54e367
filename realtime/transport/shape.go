package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
)

// shape is one subscription shape: a query document, operation and the
// values of the variables that change how an event renders. It is the
// realtime.Encoder of every subscription of that shape, so the hub makes
// one Payload per event for all of them and Encode runs once per event.
//
// rc is the operation context of a subscription of the shape: the first
// one to go live (until then, the one that created the shape; see
// confirm). Sharing it among concurrent Encode calls is safe in gqlgen
// v0.17.98:
// executor.DispatchOperation and the generated Exec only read the
// OperationContext (Doc, Operation, Variables, the middleware funcs); its one
// mutable part, the CollectFields cache, is guarded by its own RWMutex
// (graphql/collect_fields_cache_store.go). Per-execution state lives in the
// executionContext and response context each Exec creates.
type shape struct {
	key shapeKey // key.exec renders; key.text is "" for a shape of its own
	rc  atomic.Pointer[graphql.OperationContext]
	// root is the response key of the subscription's root field: the path of
	// an error that ends the subscription.
	root ast.Path
	// timeout bounds a rendering; log reports a failed one. Both are the
	// creating transport's (WriteTimeout, Logger).
	timeout time.Duration
	log     *slog.Logger

	// Guarded by Shapes.mu.
	refs      int
	confirmed bool // rc is from a subscription that went live
}

func newShape(key shapeKey, rc *graphql.OperationContext, timeout time.Duration, log *slog.Logger) *shape {
	s := &shape{key: key, root: rootPath(rc), timeout: timeout, log: log}
	s.rc.Store(rc)
	return s
}

// Encode renders ev as this shape's `payload` object ({"data":…}, with
// "errors" if any). The rendering context carries no viewer: resolvers of
// an event's subtree must not depend on who receives it.
//
// Rendering runs on the transport's shared writers, so it is bounded: its
// context's deadline is the shape's timeout (WriteTimeout), which stops
// resolvers that honour their context (store reads do). A rendering that
// fails — past the deadline, panicking, or producing nothing — is logged
// here, once per event and shape (the hub's Payload calls Encode once),
// and every recipient gets an INTERNAL error as that event's payload
// instead: the client learns it missed an event, the subscription goes on.
// Encode therefore never returns an error.
func (s *shape) Encode(ev *realtime.Event) ([]byte, error) {
	b, err := s.render(ev)
	if err == nil {
		return b, nil
	}
	rc := s.rc.Load()
	s.log.Error("transport: rendering an event failed; its recipients get an INTERNAL error",
		"event", ev.Type, "cursor", ev.Cursor, "operation", rc.OperationName, "err", err)
	return s.failure(rc), nil
}

func (s *shape) render(ev *realtime.Event) (b []byte, err error) {
	// gqlgen recovers resolver panics; this guards the rest.
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("rendering panicked: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(realtime.WithRender(context.Background(), ev), s.timeout)
	defer cancel()
	h, octx := s.key.exec.DispatchOperation(ctx, s.rc.Load())
	resp := h(octx)
	if ctx.Err() != nil {
		// Whatever came back is cut short by the deadline.
		return nil, fmt.Errorf("rendering took longer than %v", s.timeout)
	}
	if resp == nil {
		return nil, errors.New("rendering produced no response")
	}
	return marshalResponse(resp)
}

// marshalResponse encodes resp. A plain result (data, nothing else) is
// framed by hand: gqlgen wrote its data as compact JSON already, and
// json.Marshal would validate and compact it again, byte by byte — a third
// of a large event's rendering (a 20 KB description, replayed 10,000
// times by a resume).
func marshalResponse(resp *graphql.Response) ([]byte, error) {
	if len(resp.Data) == 0 || len(resp.Errors) > 0 || len(resp.Extensions) > 0 ||
		resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		return json.Marshal(resp)
	}
	b := make([]byte, 0, len(`{"data":}`)+len(resp.Data))
	b = append(b, `{"data":`...)
	b = append(b, resp.Data...)
	return append(b, '}'), nil
}

// failure is the payload of an event whose rendering failed: one INTERNAL
// error, presented by the executor like any other.
func (s *shape) failure(rc *graphql.OperationContext) []byte {
	resp := s.key.exec.DispatchError(graphql.WithOperationContext(context.Background(), rc), gqlerror.List{{
		Err:        errs.E(errs.Internal, "internal error"),
		Message:    "internal error",
		Extensions: map[string]any{"code": string(errs.Internal)},
	}})
	b, err := json.Marshal(resp)
	if err != nil {
		return []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	}
	return b
}

// shapeKey identifies a shape. exec is part of it so one transport serving
// two schemas never mixes them.
type shapeKey struct {
	exec graphql.GraphExecutor
	text string // query, operation name and render variables
}

// Shapes is a registry of subscription shapes, refcounted: a shape lives
// while a subscription uses it. The transports that share one (through
// Options.Shapes) render an event once per shape, whichever transport
// each recipient uses. Its zero value is not usable: call NewShapes.
type Shapes struct {
	mu     sync.Mutex
	shapes map[shapeKey]*shape
}

// NewShapes returns an empty shape registry.
func NewShapes() *Shapes {
	return &Shapes{shapes: make(map[shapeKey]*shape)}
}

// acquire returns the shape of rc, creating it if needed (rendering within
// timeout, failures logged to log); release gives it back.
func (r *Shapes) acquire(exec graphql.GraphExecutor, rc *graphql.OperationContext, timeout time.Duration, log *slog.Logger) *shape {
	key, shared := shapeKeyOf(exec, rc)
	if !shared {
		s := newShape(shapeKey{exec: exec}, rc, timeout, log)
		s.refs = 1
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shapes[key]
	if s == nil {
		s = newShape(key, rc, timeout, log)
		r.shapes[key] = s
	}
	s.refs++
	return s
}

// confirm records that a subscription with operation context rc went live
// on s. The first one's rc becomes the shape's: the creator's may belong to
// a subscribe that failed on its root-field arguments (e.g. a stale
// cursor), and although rendering must ignore those arguments, a shape
// should not render with values no live subscriber has.
func (r *Shapes) confirm(s *shape, rc *graphql.OperationContext) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.confirmed {
		s.confirmed = true
		s.rc.Store(rc)
	}
}

func (r *Shapes) release(s *shape) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.refs--
	// A shape of its own (text "") is in no map; its executor may not even
	// be comparable.
	if s.refs == 0 && s.key.text != "" && r.shapes[s.key] == s {
		delete(r.shapes, s.key)
	}
}

func (r *Shapes) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.shapes)
}

// shapeKeyOf computes rc's shape key. shared is false when the executor
// cannot be a map key (then the subscription gets a shape of its own).
func shapeKeyOf(exec graphql.GraphExecutor, rc *graphql.OperationContext) (shapeKey, bool) {
	if exec == nil || !reflect.TypeOf(exec).Comparable() {
		return shapeKey{}, false
	}
	names := renderVariables(rc.Doc, rc.Operation)
	vars := make(map[string]any, len(names))
	for _, n := range names {
		if v, ok := rc.Variables[n]; ok {
			vars[n] = v
		}
	}
	// encoding/json sorts map keys at every level: a canonical form.
	b, err := json.Marshal(vars)
	if err != nil {
		return shapeKey{}, false
	}
	var sb strings.Builder
	sb.Grow(len(rc.RawQuery) + len(rc.OperationName) + len(b) + 2)
	sb.WriteString(rc.RawQuery)
	sb.WriteByte(0)
	sb.WriteString(rc.OperationName)
	sb.WriteByte(0)
	sb.Write(b)
	return shapeKey{exec: exec, text: sb.String()}, true
}

// renderVariables returns, sorted, the variables op uses outside the
// arguments of its root fields: in directives (@include/@skip, also on the
// root field itself), in arguments of nested fields, in fragments. Root
// field arguments select events (which project, resume cursor); they do not
// change how an event renders.
func renderVariables(doc *ast.QueryDocument, op *ast.OperationDefinition) []string {
	used := map[string]bool{}
	var value func(v *ast.Value)
	value = func(v *ast.Value) {
		if v == nil {
			return
		}
		if v.Kind == ast.Variable {
			used[v.Raw] = true
			return
		}
		for _, c := range v.Children {
			value(c.Value)
		}
	}
	directives := func(ds ast.DirectiveList) {
		for _, d := range ds {
			for _, a := range d.Arguments {
				value(a.Value)
			}
		}
	}
	type fragVisit struct {
		name string
		root bool
	}
	seen := map[fragVisit]bool{}
	var selections func(set ast.SelectionSet, root bool)
	selections = func(set ast.SelectionSet, root bool) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				directives(s.Directives)
				if !root {
					for _, a := range s.Arguments {
						value(a.Value)
					}
				}
				selections(s.SelectionSet, false)
			case *ast.InlineFragment:
				directives(s.Directives)
				selections(s.SelectionSet, root)
			case *ast.FragmentSpread:
				directives(s.Directives)
				v := fragVisit{s.Name, root}
				if seen[v] {
					continue
				}
				seen[v] = true
				if def := doc.Fragments.ForName(s.Name); def != nil {
					directives(def.Directives)
					selections(def.SelectionSet, root)
				}
			}
		}
	}
	if op == nil {
		return nil
	}
	directives(op.Directives)
	selections(op.SelectionSet, true)
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// rootPath is the path of rc's first root field (a subscription has
// exactly one), nil if there is none.
func rootPath(rc *graphql.OperationContext) ast.Path {
	f := rootField(rc)
	if f == nil {
		return nil
	}
	if f.Alias != "" {
		return ast.Path{ast.PathName(f.Alias)}
	}
	return ast.Path{ast.PathName(f.Name)}
}
