package gqlguard

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// gen builds a document from a repeated piece.
func gen(n int, piece func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(piece(i))
	}
	return b.String()
}

// TestWorstDocuments sends the documents that cost the most before these
// bounds, and the worst ones just inside them: each is answered or refused
// with a small response, few errors and little CPU. The figures in the
// names are what the same document cost gqlgen's and gqlparser's defaults
// (measured on 2 shared cores).
func TestWorstDocuments(t *testing.T) {
	srv, _ := server(t, defaults)
	tests := []struct {
		name   string
		query  string
		status int
		limit  string // extensions.limit of the first error ("" for none)
		errors int    // at most
	}{
		{"1,000 same-name fields with different arguments (was 499,500 errors, 115 MiB)",
			"{" + gen(1000, func(i int) string { return fmt.Sprintf(`task(id: "t%d") { id } `, i) }) + "}", 422, "", 21},
		{"30,000 __typename, 330 KB (was 47 CPU-seconds)", "{" + strings.Repeat("__typename ", 30000) + "}", 422, VarMaxTokens, 1},
		{"14,000 __typename, within the token limit", "{" + strings.Repeat("__typename ", 14000) + "}", 422, VarComplexityLimit, 1},
		{"fragments doubling 26 levels, 1 KB (was 8 CPU-seconds)", doubling(26), 422, VarComplexityLimit, 1},
		{"5,000 aliased __schema (was 71 MiB)", "{" + gen(5000, func(i int) string { return fmt.Sprintf("a%d: __schema { types { name } } ", i) }) + "}", 422, VarMaxTokens, 1},
		{"500 aliased __schema", "{" + gen(500, func(i int) string { return fmt.Sprintf("a%d: __schema { types { name } } ", i) }) + "}", 422, VarComplexityLimit, 1},
		{"a chain of 1,000 fragments (was 3 s)", chain(1000, 4, "__typename"), 422, VarValidationBudget, 1},
		{"a chain of 1,000 fragments of unknown fields (was 2 million errors, 10 s)", chain(1000, 4, "nope"), 422, VarValidationBudget, 1},
		{"a chain just inside the walk budget, unknown fields", chain(130, 4, "nope"), 422, "", 21},
		{"1,500 operations spreading one fragment", gen(1500, func(i int) string { return fmt.Sprintf("query Q%d { ...F }\n", i) }) +
			"fragment F on Query { " + strings.Repeat("nope ", 1000) + "}", 422, VarValidationBudget, 1},
		{"1,500 distinct fragments spread together", "{" + gen(1500, func(i int) string { return fmt.Sprintf("...F%d ", i) }) + "}" +
			gen(1500, func(i int) string { return fmt.Sprintf("fragment F%d on Query { __typename }\n", i) }), 422, VarValidationBudget, 1},
		{"a 200 KB field name spread from 30 operations (was 1 s, 4 MB)", gen(30, func(i int) string { return fmt.Sprintf("query Q%d { ...F }\n", i) }) +
			"fragment F on Query { " + strings.Repeat("x", 200000) + " }", 422, VarValidationBudget, 1},
		{"a 500 KB field name, once", "{ " + strings.Repeat("x", 500000) + " }", 422, "", 1},
		{"14,000 unknown fields", "{" + strings.Repeat("nope ", 14000) + "}", 422, "", 21},
		{"3,000 unknown arguments", `{ task(id: "1", ` + gen(3000, func(i int) string { return fmt.Sprintf("a%d: 1 ", i) }) + `) { id } }`, 422, "", 21},
		{"3,000 unused variables", "query(" + gen(3000, func(i int) string { return fmt.Sprintf("$v%d: Int ", i) }) + ") { __typename }", 422, "", 21},
		{"lists nested 990 deep, 7 times", "{" + strings.Repeat(`task(id: `+strings.Repeat("[", 990)+"1"+strings.Repeat("]", 990)+`) { id } `, 7) + "}", 422, "", 21},
		{"nesting past the parser's depth", "{" + strings.Repeat("... on Query {", 3000) + "__typename" + strings.Repeat("}", 3000) + "}", 422, "", 1},
		{"GraphiQL's introspection query", readFile(t, "testdata/introspection.graphql"), 200, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, srv, tt.query)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %v", r.status, tt.status, r.Errors)
			}
			if len(r.Errors) > tt.errors {
				t.Fatalf("%d errors, want at most %d", len(r.Errors), tt.errors)
			}
			if tt.status != http.StatusOK {
				if len(r.Errors) == 0 {
					t.Fatal("refused without an error")
				}
				if r.limit() != tt.limit {
					t.Fatalf("limit %q, want %q: %s", r.limit(), tt.limit, r.Errors[0].Message)
				}
				for _, c := range r.codes() {
					if c != "GRAPHQL_VALIDATION_FAILED" && c != "GRAPHQL_PARSE_FAILED" && c != "BAD_USER_INPUT" {
						t.Fatalf("code %q: the error presenter would not show it as BAD_USER_INPUT", c)
					}
				}
				if max := 21 * 1200; r.bytes > max {
					t.Fatalf("a %d-byte refusal, want at most %d", r.bytes, max)
				}
			}
			// -race makes everything several times slower; this is still
			// far from the seconds these documents cost before.
			if r.cpu > 750*time.Millisecond {
				t.Fatalf("%v of CPU", r.cpu)
			}
			t.Logf("%d bytes in, %d out, %v CPU", len(tt.query), r.bytes, r.cpu)
		})
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIntrospectionSwitch: off, __schema and __type are refused as an
// invalid document naming GRAPHQL_INTROSPECTION; __typename still works.
func TestIntrospectionSwitch(t *testing.T) {
	off := defaults
	off.Introspection = false
	srv, _ := server(t, off)
	for _, q := range []string{`{ __schema { queryType { name } } }`, `{ __type(name: "Task") { name } }`, `{ ...F } fragment F on Query { __schema { types { name } } }`} {
		r := post(t, srv, q)
		if r.status != http.StatusUnprocessableEntity || r.limit() != VarIntrospection {
			t.Fatalf("%s: status %d, errors %v; want 422 naming %s", q, r.status, r.Errors, VarIntrospection)
		}
	}
	if r := post(t, srv, `{ __typename }`); r.status != http.StatusOK || string(r.Data) != `{"__typename":"Query"}` {
		t.Fatalf("__typename: %d %s %v", r.status, r.Data, r.Errors)
	}
	on, _ := server(t, defaults)
	if r := post(t, on, `{ __schema { queryType { name } } }`); r.status != http.StatusOK || !strings.Contains(string(r.Data), `"Query"`) {
		t.Fatalf("introspection on: %d %s %v", r.status, r.Data, r.Errors)
	}
}
