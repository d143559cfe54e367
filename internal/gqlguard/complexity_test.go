package gqlguard

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/taskpulse/taskpulse/graph"
)

// doubling is a document of n fragments each spreading the one before
// twice: about 30 bytes a level, 2^n fields once expanded.
func doubling(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{ ...F%d }\nfragment F0 on Query { __typename }\n", n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	return b.String()
}

func TestCost(t *testing.T) {
	es := graph.NewExecutableSchema(graph.Config{})
	introspection, err := os.ReadFile("testdata/introspection.graphql")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		query    string
		min, max int // the cost, within [min, max]
	}{
		{"fields", `{ me { id name } }`, 3, 3},
		{"every alias counts", `{ a: me { id } b: me { id } c: me { id } }`, 6, 6},
		{"__typename counts", `{ __typename me { __typename } }`, 3, 3},
		{"a list's scalars count once", `{ tasks(first: 200) { id title } }`, 3, 3},
		{"unpaged lists count once", `{ project(id: "p") { members { id } } }`, 3, 3},
		{"a page multiplies its object fields, default page", `{ projects { id members { id } } }`, 2 + 50*2, 2 + 50*2},
		{"a page multiplies its object fields, first", `{ teams(first: 200) { members { id name } } }`, 1 + 200*3, 1 + 200*3},
		{"a page multiplies its object fields, first in a variable", `query($n: Int) { teams(first: $n) { members { id } } }`, 1 + 7*2, 1 + 7*2},
		{"a page multiplies fields in fragments", `{ projects(first: 10) { ...P ... on Project { name } } } fragment P on Project { members { id } }`, 2 + 10*2, 2 + 10*2},
		{"inline fragments", `{ ... on Query { me { ... on User { id } } } }`, 2, 2},
		{"a fragment counts at each spread", `{ ...F a: me { ...G } } fragment F on Query { me { ...G } } fragment G on User { id name }`, 6, 6},
		{"fragments spread twice per level, 26 levels", doubling(26), 1 << 26, 1 << 26},
		{"70 levels saturate instead of overflowing", doubling(70), math.MaxInt, math.MaxInt},
		{"__schema", `{ __schema { types { name } } }`, SchemaCost + 2, SchemaCost + 2},
		{"__type", `{ __type(name: "Task") { fields { name } } }`, TypeCost + 2, TypeCost + 2},
		{"__schema under aliases", `{ a: __schema { queryType { name } } b: __schema { queryType { name } } }`, 2 * (SchemaCost + 2), 2 * (SchemaCost + 2)},
		{"__type in a fragment", `{ ...T ...T } fragment T on Query { __type(name: "Task") { name } }`, 2 * (TypeCost + 1), 2 * (TypeCost + 1)},
		// GraphiQL's own query (graphql-js getIntrospectionQuery with every
		// option) fits the default limit once, not twice.
		{"GraphiQL's introspection query", string(introspection), 600, 999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := parser.ParseQuery(&ast.Source{Input: tt.query})
			if err != nil {
				t.Fatal(err)
			}
			if errs := validator.ValidateWithRules(es.Schema(), doc, nil); len(errs) > 0 {
				t.Fatalf("invalid document: %v", errs)
			}
			start := cpuTime()
			got := Cost(context.Background(), es, doc.Operations[0], map[string]any{"n": int64(7)}, 50)
			if spent := cpuTime() - start; spent > 100*time.Millisecond {
				t.Errorf("costing took %v of CPU", spent)
			}
			if got < tt.min || got > tt.max {
				t.Fatalf("cost %d, want [%d, %d]", got, tt.min, tt.max)
			}
		})
	}
}

// TestCostMatchesGqlgen: without introspection, and counting every list
// once (no default page), the cost is gqlgen's own
// (complexity.Calculate, which expands every spread), on random valid
// documents full of fragments.
func TestCostMatchesGqlgen(t *testing.T) {
	es := graph.NewExecutableSchema(graph.Config{})
	rng := rand.New(rand.NewPCG(11, 5))
	compared := 0
	for range 2500 {
		q := randomDocument(rng, es.Schema())
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			t.Fatal(err)
		}
		if errs := validator.ValidateWithRules(es.Schema(), doc, nil); len(errs) > 0 {
			continue
		}
		want := complexity.Calculate(context.Background(), es, doc.Operations[0], nil)
		if got := Cost(context.Background(), es, doc.Operations[0], nil, 0); got != want {
			t.Fatalf("cost %d, gqlgen %d, for\n%s", got, want, q)
		}
		compared++
	}
	if compared < 250 {
		t.Fatalf("only %d valid documents compared", compared)
	}
}
