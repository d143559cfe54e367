package gqlguard

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// overlapOnly validates doc with one overlapping-fields rule and returns
// the distinct messages, sorted.
func overlapOnly(t *testing.T, schema *ast.Schema, query string, rule core.RuleFunc) []string {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	errs := validator.ValidateWithRules(schema, doc, rules.NewRules(core.Rule{Name: "Overlap", RuleFunc: rule}))
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Message)
	}
	slices.Sort(msgs)
	return slices.Compact(msgs)
}

// TestOverlapMatchesGqlparser runs graphql-js's 49 cases for the rule
// (as gqlparser imports them) through gqlparser's rule and the budgeted
// port: both must find the same conflicts. The port may report a conflict
// fewer times (identical fields are kept once), never a different one.
func TestOverlapMatchesGqlparser(t *testing.T) {
	raw, err := os.ReadFile("testdata/overlap_spec.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Schemas map[string]string
		Cases   []struct{ Name, Schema, Query string }
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*ast.Schema{}
	for k, sdl := range spec.Schemas {
		s, err := validator.LoadSchema(validator.Prelude, &ast.Source{Input: sdl})
		if err != nil {
			t.Fatalf("schema %s: %v", k, err)
		}
		schemas[k] = s
	}
	conflicts := 0
	for _, c := range spec.Cases {
		t.Run(c.Name, func(t *testing.T) {
			want := overlapOnly(t, schemas[c.Schema], c.Query, rules.OverlappingFieldsCanBeMergedRule.RuleFunc)
			got := overlapOnly(t, schemas[c.Schema], c.Query, overlapRule(&validation{maxErrors: 1000, budget: 50000}))
			if !slices.Equal(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			conflicts += len(want)
		})
	}
	if conflicts < 20 {
		t.Fatalf("only %d conflicts in the whole suite: the cases did not load", conflicts)
	}
}

// TestOverlapBudget: documents that made the rule quadratic are checked
// within the budget, or refused with one error naming it; real conflicts
// are still found.
func TestOverlapBudget(t *testing.T) {
	schema := testSchema(t)
	frags := func(n int, body string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "fragment F%d on Query { %s }\n", i, body)
		}
		return b.String()
	}
	spreads := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "...F%d ", i)
		}
		return b.String()
	}
	var diffArgs strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&diffArgs, `task(id: "t%d") { id } `, i)
	}
	tests := []struct {
		name      string
		query     string
		maxSpent  int    // units the rule may spend
		errors    int    // how many errors (after the cap of 20+1)
		budget    bool   // whether the last error is the budget's
		wantInMsg string // part of the first message
	}{
		{name: "30,000 identical __typename", query: "{" + strings.Repeat("__typename ", 30000) + "}", maxSpent: 2 * 30000},
		{name: "identical leaves under aliases", query: "{" + strings.Repeat("a: me { id } b: me { id } ", 200) + "}", maxSpent: 50000},
		{name: "1,000 same name, different arguments", query: "{" + diffArgs.String() + "}", errors: 21, wantInMsg: "differing arguments"},
		{name: "1,500 distinct fragments spread together", query: "{" + spreads(1500) + "}" + frags(1500, "__typename"), errors: 1, budget: true},
		{name: "the same fragment spread 5,000 times", query: "{" + strings.Repeat("...F0 ", 5000) + "}" + frags(1, "__typename"), maxSpent: 20000},
		{name: "a conflict three fragments deep", query: `{ ...A me { id } } fragment A on Query { ...B } fragment B on Query { ...C } fragment C on Query { me: task(id: "1") { id } }`,
			errors: 1, wantInMsg: `"me" and "task" are different fields`},
		{name: "a conflict in subfields", query: `{ me { x: id } me { x: name } }`, errors: 1, wantInMsg: `subfields "x" conflict`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := parser.ParseQuery(&ast.Source{Input: tt.query})
			if err != nil {
				t.Fatal(err)
			}
			v := &validation{maxErrors: 20, budget: 50000}
			errs := validator.ValidateWithRules(schema, doc, rules.NewRules(core.Rule{Name: "Overlap", RuleFunc: capErrors(v, overlapRule(v))}))
			if len(errs) != tt.errors {
				t.Fatalf("%d errors, want %d: %v", len(errs), tt.errors, errs)
			}
			if tt.maxSpent > 0 && v.spent > tt.maxSpent {
				t.Fatalf("spent %d units, want at most %d", v.spent, tt.maxSpent)
			}
			if v.spent > v.budget+v.budget/10 {
				t.Fatalf("spent %d units, budget %d", v.spent, v.budget)
			}
			if tt.errors == 0 {
				return
			}
			last := errs[len(errs)-1]
			if isBudget := last.Extensions["limit"] == VarValidationBudget; isBudget != tt.budget {
				t.Fatalf("last error %q: budget %v, want %v", last.Message, isBudget, tt.budget)
			}
			if !strings.Contains(errs[0].Message, tt.wantInMsg) {
				t.Fatalf("first error %q, want it to say %q", errs[0].Message, tt.wantInMsg)
			}
		})
	}
}

var (
	topOfMessage  = regexp.MustCompile(`^Fields "([^"]*)" conflict because`)
	subfieldNames = regexp.MustCompile(`subfields "([^"]*)"`)
	leafConflicts = regexp.MustCompile(`"([^"]*)" and "([^"]*)" are different fields|they have differing arguments|conflicting types "([^"]*)" and "([^"]*)"`)
)

// unordered reduces each conflict message to what conflicts, whatever the
// order and repetition of its parts, and returns the distinct ones sorted.
// gqlparser reports a conflict once per pair of fields, so three fields of
// which two are identical give it twice (once in each order, or twice in
// one message about subfields); the port, keeping identical fields once,
// gives it once.
func unordered(msgs []string) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		var leaves, subs []string
		for _, g := range leafConflicts.FindAllStringSubmatch(m, -1) {
			switch {
			case g[1] != "" || g[2] != "":
				leaves = append(leaves, "fields "+min(g[1], g[2])+"/"+max(g[1], g[2]))
			case g[3] != "" || g[4] != "":
				leaves = append(leaves, "types "+min(g[3], g[4])+"/"+max(g[3], g[4]))
			default:
				leaves = append(leaves, "arguments")
			}
		}
		for _, g := range subfieldNames.FindAllStringSubmatch(m, -1) {
			subs = append(subs, g[1])
		}
		slices.Sort(leaves)
		slices.Sort(subs)
		top := topOfMessage.FindStringSubmatch(m)
		if top == nil {
			top = []string{"", m}
		}
		out = append(out, top[1]+" | "+strings.Join(slices.Compact(subs), ",")+" | "+strings.Join(slices.Compact(leaves), ","))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestOverlapRandomDocuments compares the port with gqlparser's rule on
// random documents over taskpulse's schema, built to collide: few response
// names, few argument values, fragments and inline fragments spread
// everywhere. Both must find the same conflicts.
func TestOverlapRandomDocuments(t *testing.T) {
	schema := testSchema(t)
	rng := rand.New(rand.NewPCG(5, 2026))
	mismatches := 0
	conflicts := 0
	for i := range 1500 {
		q := randomDocument(rng, schema)
		want := unordered(overlapOnly(t, schema, q, rules.OverlappingFieldsCanBeMergedRule.RuleFunc))
		got := unordered(overlapOnly(t, schema, q, overlapRule(&validation{maxErrors: 1000, budget: 1 << 30})))
		conflicts += len(want)
		if !slices.Equal(got, want) {
			mismatches++
			t.Errorf("document %d:\n%s\ngot  %q\nwant %q", i, q, got, want)
			if mismatches > 3 {
				t.FailNow()
			}
		}
	}
	if conflicts < 300 {
		t.Fatalf("only %d conflicts in 1,500 documents: the generator does not collide", conflicts)
	}
	t.Logf("%d conflicts found alike", conflicts)
}
