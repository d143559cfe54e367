package gqlguard

import (
	"context"
	"encoding/json"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// What introspection costs besides its fields: __schema answers with the
// whole schema, __type with one type, so a document cannot ask for either
// many times over under aliases. With the default limit (1000), GraphiQL's
// full introspection query (about 210 fields under __schema) fits once.
const (
	SchemaCost = 500
	TypeCost   = 50
)

// Complexity is the complexity limit, a gqlgen extension that refuses an
// operation costing more than Limit after validation and before anything
// executes. It replaces gqlgen's extension.ComplexityLimit, which expands
// every fragment spread (2^26 fields for a 1 KB document of fragments that
// each spread the previous one twice) and skips __schema.
//
// The cost of an operation: every field 1 plus the cost of its selections,
// or what the schema's complexity function says if it has one for the
// field (as gqlgen counts); __schema and __type add SchemaCost and
// TypeCost. A fragment's cost is computed once per definition and added at
// each spread, so the analysis is linear in the document whatever the
// fragments' nesting, while the cost counted is still the cost of the
// expanded operation. Sums saturate rather than overflow.
//
// A paged list (a list field with a `first` argument) multiplies what its
// items' object fields cost by its page size (`first`, or DefaultPage):
// each such field is resolved once per item (Project.members is a store
// read per project), so 333 aliases of `projects(first: 200) { members {
// id } }`, 12 KB counted as 999, cost 5 CPU-seconds. Its items' scalar
// fields count once: they are read with the item, and the response limit
// bounds what they hold.
type Complexity struct {
	Limit       int
	DefaultPage int // page size of a paged list without `first`
	es          graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &Complexity{}

// ExtensionName implements graphql.HandlerExtension.
func (*Complexity) ExtensionName() string { return "ComplexityLimit" }

// Validate implements graphql.HandlerExtension; it keeps the schema.
func (c *Complexity) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

// MutateOperationContext refuses the operation when it costs over Limit.
func (c *Complexity) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if cost := Cost(ctx, c.es, oc.Operation, oc.Variables, c.DefaultPage); cost > c.Limit {
		return refusal(VarComplexityLimit, "operation has complexity %d, which exceeds the limit of %d: ask for fewer fields, aliases or introspection", cost, c.Limit)
	}
	return nil
}

// Cost is the complexity of a validated operation (see Complexity), with
// defaultPage the page size of a paged list without `first`; 0 counts
// every list once, as gqlgen does.
func Cost(ctx context.Context, es graphql.ExecutableSchema, op *ast.OperationDefinition, vars map[string]any, defaultPage int) int {
	c := &coster{ctx: ctx, es: es, vars: vars, page: defaultPage, fragments: make(map[string]cost), active: make(map[string]bool)}
	return c.set(op.SelectionSet).total()
}

type coster struct {
	ctx       context.Context
	es        graphql.ExecutableSchema
	vars      map[string]any
	page      int
	fragments map[string]cost // of each fragment definition, once known
	active    map[string]bool
}

// cost is a selection set's, split in what its scalar fields cost and what
// its fields with selections cost: a paged list multiplies only the latter.
type cost struct{ leaves, objects int }

func (c cost) total() int { return add(c.leaves, c.objects) }

func (c cost) plus(d cost) cost { return cost{add(c.leaves, d.leaves), add(c.objects, d.objects)} }

func (c *coster) set(set ast.SelectionSet) cost {
	var total cost
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if n := c.field(s); len(s.SelectionSet) == 0 {
				total.leaves = add(total.leaves, n)
			} else {
				total.objects = add(total.objects, n)
			}
		case *ast.InlineFragment:
			total = total.plus(c.set(s.SelectionSet))
		case *ast.FragmentSpread:
			total = total.plus(c.fragment(s))
		}
	}
	return total
}

func (c *coster) fragment(s *ast.FragmentSpread) cost {
	if s.Definition == nil {
		return cost{}
	}
	name := s.Definition.Name
	if n, ok := c.fragments[name]; ok {
		return n
	}
	if c.active[name] {
		return cost{} // a cycle: validation refuses those; never loop on one
	}
	c.active[name] = true
	n := c.set(s.Definition.SelectionSet)
	delete(c.active, name)
	c.fragments[name] = n
	return n
}

func (c *coster) field(f *ast.Field) int {
	sel := c.set(f.SelectionSet)
	child := sel.total()
	switch f.Name {
	case "__schema":
		return add(SchemaCost, child)
	case "__type":
		return add(TypeCost, child)
	}
	var args map[string]any
	if len(f.Arguments) > 0 {
		args = f.ArgumentMap(c.vars)
	}
	if c.es != nil && f.ObjectDefinition != nil && f.Definition != nil {
		if custom, ok := c.es.Complexity(c.ctx, f.ObjectDefinition.Name, f.Name, child, args); ok && custom >= 1 {
			return custom
		}
	}
	if n := c.pageSize(f, args); n > 1 {
		child = add(sel.leaves, mul(sel.objects, n))
	}
	return add(1, child)
}

// pageSize is how many items a paged list field may hold: its `first`, or
// the default page; 0 for other fields, or without a default page.
func (c *coster) pageSize(f *ast.Field, args map[string]any) int {
	if c.page <= 0 || f.Definition == nil || f.Definition.Type.Elem == nil || f.Definition.Arguments.ForName("first") == nil {
		return 0
	}
	switch v := args["first"].(type) {
	case int:
		return v
	case int32:
		return int(v)
	case int64:
		return int(min(v, math.MaxInt32))
	case float64:
		return int(min(v, math.MaxInt32))
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return int(min(n, math.MaxInt32))
		}
	}
	return c.page // absent, null, or not a number (the resolver refuses those)
}

// add is a saturating sum of non-negative costs.
func add(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// mul is a saturating product of non-negative costs.
func mul(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}
