package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestCostPagesOfObjects: a page's object fields resolve once per item
// (Project.members is a store read per project), so the complexity limit
// multiplies them by the page size. alice owns 200 projects; 333 aliases
// of projects(first: 200){members{id}}, 12 KB, counted 999. Before: 200,
// 2 MB, 5 CPU-seconds and RSS +120 MiB for one request (66,600 member
// reads). The same page once, or its scalars under many aliases, is still
// answered; `first` from a variable counts too.
func TestCostPagesOfObjects(t *testing.T) {
	e := start(t, nil)
	e.users("alice")
	e.do("alice", "mutation {"+repeat(200, func(i int) string {
		return fmt.Sprintf(`p%d: createProject(input: {name: "p%d"}) { id } `, i, i)
	})+"}", nil, nil)

	attack{
		query:  "{" + repeat(333, func(i int) string { return fmt.Sprintf("a%d: projects(first: 200) { members { id } } ", i) }) + "}",
		status: http.StatusUnprocessableEntity, maxBytes: 1 << 10, maxErrors: 1,
		maxCPU: 300 * time.Millisecond, maxHeapPeak: 32 << 20, limit: "GRAPHQL_COMPLEXITY_LIMIT",
	}.run(t, e)

	t.Run("first in a variable", func(t *testing.T) {
		q := "query($n: Int) {" + repeat(3, func(i int) string { return fmt.Sprintf("a%d: projects(first: $n) { members { id } } ", i) }) + "}"
		status, body := e.postRaw(context.Background(), "alice", q, map[string]any{"n": 200})
		if status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422: %.300s", status, body)
		}
	})
	t.Run("answered", func(t *testing.T) {
		for _, q := range []string{
			`{ projects(first: 200) { id name members { id name } } }`,
			"{" + repeat(300, func(i int) string { return fmt.Sprintf("a%d: projects(first: 200) { id } ", i) }) + "}",
		} {
			var out map[string][]struct{ ID string }
			e.do("alice", q, nil, &out)
		}
	})
}
