package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

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
	reg  *shapeRegistry
	key  shapeKey
	exec graphql.GraphExecutor
	rc   atomic.Pointer[graphql.OperationContext]
	// root is the response key of the subscription's root field: the path of
	// an error that ends the subscription.
	root ast.Path

	// Guarded by reg.mu.
	refs      int
	confirmed bool // rc is from a subscription that went live
}

func newShape(r *shapeRegistry, key shapeKey, exec graphql.GraphExecutor, rc *graphql.OperationContext) *shape {
	s := &shape{reg: r, key: key, exec: exec, root: rootPath(rc)}
	s.rc.Store(rc)
	return s
}

// Encode renders ev as this shape's `payload` object ({"data":…}, with
// "errors" if any). The rendering context carries no viewer: resolvers of
// an event's subtree must not depend on who receives it.
func (s *shape) Encode(ev *realtime.Event) (b []byte, err error) {
	// gqlgen recovers resolver panics; this guards the rest, so a bad
	// event costs its frames, never the process.
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("transport: rendering an event panicked: %v", r)
		}
	}()
	ctx := realtime.WithRender(context.Background(), ev)
	h, ctx := s.exec.DispatchOperation(ctx, s.rc.Load())
	resp := h(ctx)
	if resp == nil {
		return nil, errors.New("transport: rendering an event produced no response")
	}
	return json.Marshal(resp)
}

// shapeKey identifies a shape. exec is part of it so one transport serving
// two schemas never mixes them.
type shapeKey struct {
	exec graphql.GraphExecutor
	text string // query, operation name and render variables
}

// shapeRegistry holds a transport's shapes, refcounted: a shape lives while
// a subscription uses it.
type shapeRegistry struct {
	mu     sync.Mutex
	shapes map[shapeKey]*shape
}

func newShapeRegistry() *shapeRegistry {
	return &shapeRegistry{shapes: make(map[shapeKey]*shape)}
}

// acquire returns the shape of rc, creating it if needed; release gives it
// back.
func (r *shapeRegistry) acquire(exec graphql.GraphExecutor, rc *graphql.OperationContext) *shape {
	key, shared := shapeKeyOf(exec, rc)
	if !shared {
		s := newShape(r, shapeKey{}, exec, rc)
		s.refs = 1
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shapes[key]
	if s == nil {
		s = newShape(r, key, exec, rc)
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
func (r *shapeRegistry) confirm(s *shape, rc *graphql.OperationContext) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.confirmed {
		s.confirmed = true
		s.rc.Store(rc)
	}
}

func (r *shapeRegistry) release(s *shape) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.refs--
	if s.refs == 0 && r.shapes[s.key] == s {
		delete(r.shapes, s.key)
	}
}

func (r *shapeRegistry) len() int {
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
	if rc == nil || rc.Operation == nil {
		return nil
	}
	var find func(set ast.SelectionSet) string
	find = func(set ast.SelectionSet) string {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if s.Alias != "" {
					return s.Alias
				}
				return s.Name
			case *ast.InlineFragment:
				if n := find(s.SelectionSet); n != "" {
					return n
				}
			case *ast.FragmentSpread:
				if def := rc.Doc.Fragments.ForName(s.Name); def != nil {
					if n := find(def.SelectionSet); n != "" {
						return n
					}
				}
			}
		}
		return ""
	}
	if n := find(rc.Operation.SelectionSet); n != "" {
		return ast.Path{ast.PathName(n)}
	}
	return nil
}
