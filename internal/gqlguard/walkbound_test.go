package gqlguard

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// chain is a document of n fragments, each with k copies of field and a
// spread of the one before: gqlparser's walk enters fragment i from i+1
// definitions, so the walk is quadratic in n.
func chain(n, k int, field string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{ ...F%d }\n", n-1)
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on Query { %s", i, strings.Repeat(field+" ", k))
		if i > 0 {
			fmt.Fprintf(&b, "...F%d", i-1)
		}
		b.WriteString(" }\n")
	}
	return b.String()
}

// visits counts the nodes gqlparser's walk visits in a document, by
// observing every event it raises for a node.
func visits(t *testing.T, query string) int {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	count := core.Rule{Name: "count", RuleFunc: func(o *core.Events, _ core.AddErrFunc) {
		o.OnOperation(func(*core.Walker, *ast.OperationDefinition) { n++ })
		o.OnFragment(func(*core.Walker, *ast.FragmentDefinition) { n++ })
		o.OnField(func(*core.Walker, *ast.Field) { n++ })
		o.OnFragmentSpread(func(*core.Walker, *ast.FragmentSpread) { n++ })
		o.OnInlineFragment(func(*core.Walker, *ast.InlineFragment) { n++ })
		o.OnDirective(func(*core.Walker, *ast.Directive) { n++ })
		o.OnValue(func(*core.Walker, *ast.Value) { n++ })
		o.OnVariable(func(*core.Walker, *ast.VariableDefinition) { n++ })
	}}
	validator.ValidateWithRules(testSchema(t), doc, rules.NewRules(count))
	return n
}

// TestWalkCostIsTheWalk: for names under 64 bytes WalkCost is exactly the
// number of nodes gqlparser's walk visits, fragments re-entered included.
func TestWalkCostIsTheWalk(t *testing.T) {
	docs := map[string]string{
		"fields":             `{ me { id name } task(id: "1") { id title } }`,
		"values":             `mutation { createTask(input: {title: "t", description: "d"}) { id } }`,
		"variables":          `query($a: ID = "x", $b: Boolean! @deprecated) { task(id: $a) @include(if: $b) { id } }`,
		"inline fragments":   `{ ... on Query { me { ... { id } } } }`,
		"a fragment twice":   `{ ...A me { ...A2 } } fragment A on Query { me { id } } fragment A2 on User { id ...A3 } fragment A3 on User { name }`,
		"two operations":     `query A { ...F } query B { ...F ...F } fragment F on Query { me { id } }`,
		"a chain":            chain(20, 3, "__typename"),
		"a cycle":            `{ ...A } fragment A on Query { ...B } fragment B on Query { ...A me { id } }`,
		"an unknown spread":  `{ ...Nope me { id } }`,
		"a duplicate name":   `{ ...A } fragment A on Query { me { id } } fragment A on Query { __typename }`,
		"directive on frags": `{ ...A @skip(if: false) } fragment A on Query @deprecated { me { id } }`,
	}
	for name, q := range docs {
		t.Run(name, func(t *testing.T) {
			doc, err := parser.ParseQuery(&ast.Source{Input: q})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := WalkCost(doc, 1<<30)
			if want := visits(t, q); !ok || got != want {
				t.Fatalf("WalkCost = %d (ok %v), the walk visits %d", got, ok, want)
			}
		})
	}
}

// TestWalkCostStopsAtTheLimit: counting stops once over the limit, so
// measuring a document whose walk is quadratic costs about the limit.
func TestWalkCostStopsAtTheLimit(t *testing.T) {
	q := chain(1000, 4, "__typename") // 76 KB; the walk visits about 2.5 million nodes
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	start := cpuTime()
	cost, ok := WalkCost(doc, 50000)
	spent := cpuTime() - start
	if ok || cost < 50000 || cost > 60000 {
		t.Fatalf("WalkCost = %d, ok %v; want it to stop just past 50000", cost, ok)
	}
	if spent > 200*time.Millisecond {
		t.Fatalf("measuring took %v of CPU", spent)
	}
	if full, _ := WalkCost(doc, 1<<30); full < 2_000_000 {
		t.Fatalf("the full walk is %d, expected it quadratic", full)
	}
}

// TestWalkCostWeighsNames: a long name weighs 1 per 64 bytes wherever the
// walk meets it, so re-entering it from many operations adds up.
func TestWalkCostWeighsNames(t *testing.T) {
	long := strings.Repeat("x", 64*100)
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "query Q%d { ...F }\n", i)
	}
	fmt.Fprintf(&b, "fragment F on Query { %s }", long)
	doc, err := parser.ParseQuery(&ast.Source{Input: b.String()})
	if err != nil {
		t.Fatal(err)
	}
	cost, _ := WalkCost(doc, 1<<30)
	// 30 operations + 30 spreads + the definition: 61; the field, met 31
	// times, weighs 101 each time.
	if want := 61 + 31*101; cost != want {
		t.Fatalf("WalkCost = %d, want %d", cost, want)
	}
}
