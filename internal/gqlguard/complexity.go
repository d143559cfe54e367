package gqlguard

import (
	"context"
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
type Complexity struct {
	Limit int
	es    graphql.ExecutableSchema
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
	if cost := Cost(ctx, c.es, oc.Operation, oc.Variables); cost > c.Limit {
		return refusal(VarComplexityLimit, "operation has complexity %d, which exceeds the limit of %d: ask for fewer fields, aliases or introspection", cost, c.Limit)
	}
	return nil
}

// Cost is the complexity of a validated operation (see Complexity).
func Cost(ctx context.Context, es graphql.ExecutableSchema, op *ast.OperationDefinition, vars map[string]any) int {
	c := &coster{ctx: ctx, es: es, vars: vars, fragments: make(map[string]int), active: make(map[string]bool)}
	return c.set(op.SelectionSet)
}

type coster struct {
	ctx       context.Context
	es        graphql.ExecutableSchema
	vars      map[string]any
	fragments map[string]int // cost of each fragment definition, once known
	active    map[string]bool
}

func (c *coster) set(set ast.SelectionSet) int {
	total := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			total = add(total, c.field(s))
		case *ast.InlineFragment:
			total = add(total, c.set(s.SelectionSet))
		case *ast.FragmentSpread:
			total = add(total, c.fragment(s))
		}
	}
	return total
}

func (c *coster) fragment(s *ast.FragmentSpread) int {
	if s.Definition == nil {
		return 0
	}
	name := s.Definition.Name
	if cost, ok := c.fragments[name]; ok {
		return cost
	}
	if c.active[name] {
		return 0 // a cycle: validation refuses those; never loop on one
	}
	c.active[name] = true
	cost := c.set(s.Definition.SelectionSet)
	delete(c.active, name)
	c.fragments[name] = cost
	return cost
}

func (c *coster) field(f *ast.Field) int {
	child := c.set(f.SelectionSet)
	switch f.Name {
	case "__schema":
		return add(SchemaCost, child)
	case "__type":
		return add(TypeCost, child)
	}
	if c.es != nil && f.ObjectDefinition != nil && f.Definition != nil {
		var args map[string]any
		if len(f.Arguments) > 0 {
			args = f.ArgumentMap(c.vars)
		}
		if custom, ok := c.es.Complexity(c.ctx, f.ObjectDefinition.Name, f.Name, child, args); ok && custom >= 1 {
			return custom
		}
	}
	return add(1, child)
}

// add is a saturating sum of non-negative costs.
func add(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}
