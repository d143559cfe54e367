package gqlguard

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

func parse(t *testing.T, q string) *ast.QueryDocument {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestQueryCacheBoundedInBytes: documents of a tiny query and a long
// comment fill the cache by their bytes, not their number; the least
// recently used go first; one larger than the cache is not kept.
func TestQueryCacheBoundedInBytes(t *testing.T) {
	ctx := context.Background()
	const max = 1 << 20
	c := NewQueryCache(max)
	doc := func(i, pad int) string { return fmt.Sprintf("{ __typename } # %d %s", i, strings.Repeat("x", pad)) }

	for i := range 40 {
		q := doc(i, 100<<10)
		c.Add(ctx, q, parse(t, q))
	}
	if c.Bytes() > max || c.Len() > 10 || c.Len() < 8 {
		t.Fatalf("after 40 documents of 100 KiB: %d entries, %d bytes (max %d)", c.Len(), c.Bytes(), max)
	}
	if _, ok := c.Get(ctx, doc(39, 100<<10)); !ok {
		t.Fatal("the last document added was evicted")
	}
	if _, ok := c.Get(ctx, doc(0, 100<<10)); ok {
		t.Fatal("the first document added is still there")
	}

	// Used recently, kept: touch the oldest entry, add one more.
	oldest := doc(40-c.Len(), 100<<10)
	if _, ok := c.Get(ctx, oldest); !ok {
		t.Fatal("lost track of the oldest entry")
	}
	q := doc(100, 100<<10)
	c.Add(ctx, q, parse(t, q))
	if _, ok := c.Get(ctx, oldest); !ok {
		t.Fatal("an entry just used was evicted before older ones")
	}

	huge := doc(1000, max)
	c.Add(ctx, huge, parse(t, huge))
	if _, ok := c.Get(ctx, huge); ok || c.Bytes() > max {
		t.Fatalf("a document larger than the cache was kept (%d bytes used)", c.Bytes())
	}
}

// TestQueryCacheCountsNodes: a document dense in nodes costs what its
// parsed form holds, not only its text.
func TestQueryCacheCountsNodes(t *testing.T) {
	q := "{" + strings.Repeat("me { id name } ", 1000) + "}"
	got := DocumentBytes(q, parse(t, q))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	docs := make([]*ast.QueryDocument, 20)
	for i := range docs {
		docs[i] = parse(t, q)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc-before.HeapAlloc) / int64(len(docs))
	runtime.KeepAlive(docs)
	if got < held {
		t.Fatalf("DocumentBytes = %d, but a parsed copy holds %d", got, held)
	}
	if got > 4*held+int64(len(q)) {
		t.Fatalf("DocumentBytes = %d, far above the %d a parsed copy holds", got, held)
	}
}

// TestQueryCacheConcurrent: gqlgen calls the cache from every request's
// goroutine (run with -race).
func TestQueryCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	c := NewQueryCache(64 << 10)
	docs := make([]string, 50)
	parsed := make([]*ast.QueryDocument, len(docs))
	for i := range docs {
		docs[i] = fmt.Sprintf("{ __typename } # %d %s", i, strings.Repeat("y", 4<<10))
		parsed[i] = parse(t, docs[i])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g*7 + i) % len(docs)
				if d, ok := c.Get(ctx, docs[k]); ok && d != parsed[k] {
					t.Errorf("entry %d holds another document", k)
				}
				c.Add(ctx, docs[k], parsed[k])
			}
		})
	}
	wg.Wait()
	if c.Bytes() > 64<<10 {
		t.Fatalf("%d bytes held, max %d", c.Bytes(), 64<<10)
	}
}
