package gqlguard

import (
	"container/list"
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// nodeBytes is what one node of a parsed and validated document holds on
// the heap, rounded up from measurement (228 to 400 bytes: validation
// annotates nodes with their definitions).
const nodeBytes = 400

// QueryCache is gqlgen's cache of parsed and validated documents, keyed by
// their text, least recently used first out, bounded by the bytes its
// entries hold rather than by their number: gqlgen's default (1,000
// entries) held 1.5 GiB of 1 MiB documents made of a tiny query and a long
// comment. An entry costs its text (the key; the document's positions
// point into the same string) plus nodeBytes per node. A document larger
// than the whole cache is not kept. gqlgen only adds documents that
// validated, so failures are never cached.
type QueryCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // of *cacheEntry, most recent first
	items map[string]*list.Element
}

type cacheEntry struct {
	key  string
	doc  *ast.QueryDocument
	cost int64
}

var _ graphql.Cache[*ast.QueryDocument] = (*QueryCache)(nil)

// NewQueryCache returns an empty cache holding at most maxBytes.
func NewQueryCache(maxBytes int64) *QueryCache {
	return &QueryCache{max: maxBytes, order: list.New(), items: make(map[string]*list.Element)}
}

// Get implements graphql.Cache.
func (c *QueryCache) Get(_ context.Context, query string) (*ast.QueryDocument, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[query]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).doc, true
}

// Add implements graphql.Cache.
func (c *QueryCache) Add(_ context.Context, query string, doc *ast.QueryDocument) {
	cost := DocumentBytes(query, doc) // outside the lock: linear in the document
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[query]; ok {
		c.order.MoveToFront(el)
		return
	}
	for c.used+cost > c.max {
		c.evict()
	}
	c.items[query] = c.order.PushFront(&cacheEntry{key: query, doc: doc, cost: cost})
	c.used += cost
}

func (c *QueryCache) evict() {
	el := c.order.Back()
	e := el.Value.(*cacheEntry)
	c.order.Remove(el)
	delete(c.items, e.key)
	c.used -= e.cost
}

// Bytes is what the entries are counted to hold; Len how many there are.
func (c *QueryCache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// Len is the number of cached documents.
func (c *QueryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// DocumentBytes estimates what a cached document holds: its text plus
// nodeBytes per node (operations, fragments, variables, selections,
// directives, argument values).
func DocumentBytes(query string, doc *ast.QueryDocument) int64 {
	var spreads []string // not followed: each fragment is counted once, where defined
	nodes := 0
	for _, op := range doc.Operations {
		nodes += 1 + directivesSize(op.Directives) + setSize(op.SelectionSet, &spreads)
		for _, v := range op.VariableDefinitions {
			nodes += 1 + valueSize(v.DefaultValue) + directivesSize(v.Directives)
		}
		spreads = spreads[:0]
	}
	for _, f := range doc.Fragments {
		nodes += 1 + directivesSize(f.Directives) + setSize(f.SelectionSet, &spreads)
		spreads = spreads[:0]
	}
	return int64(len(query)) + int64(nodes)*nodeBytes
}
