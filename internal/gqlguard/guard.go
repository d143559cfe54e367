package gqlguard

import (
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
)

// Options are the limits Install applies; config.Config supplies them
// (its defaults are the safe ones, documented in the README).
type Options struct {
	MaxTokens        int   // tokens in a document (GRAPHQL_MAX_TOKENS)
	MaxErrors        int   // errors in a response (GRAPHQL_MAX_ERRORS)
	ValidationBudget int   // walk visits and field comparisons (GRAPHQL_VALIDATION_BUDGET)
	ComplexityLimit  int   // cost of an operation (GRAPHQL_COMPLEXITY_LIMIT)
	DefaultPageSize  int   // items of a paged list without `first`, for the complexity
	MaxResponseBytes int64 // data in a response (GRAPHQL_MAX_RESPONSE_BYTES)
	QueryCacheBytes  int64 // parsed documents kept (GRAPHQL_QUERY_CACHE_BYTES)
	Introspection    bool  // __schema and __type answered (GRAPHQL_INTROSPECTION)
}

// Install sets every bound on srv and returns its query cache. Call it
// once, before srv serves: gqlgen's setters are not safe to call later.
func Install(srv *handler.Server, o Options) *QueryCache {
	cache := NewQueryCache(o.QueryCacheBytes)
	srv.SetQueryCache(cache)
	srv.SetParserTokenLimit(o.MaxTokens)
	srv.SetValidationRulesFn(Rules(o.MaxErrors, o.ValidationBudget, o.Introspection))
	// Rules has no suggestions, and needs gqlgen to add none (see Rules).
	srv.SetDisableSuggestion(true)
	srv.Use(WalkBound{Cache: cache, MaxTokens: o.MaxTokens, Budget: o.ValidationBudget})
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(&Complexity{Limit: o.ComplexityLimit, DefaultPage: o.DefaultPageSize})
	srv.Use(Responses{MaxBytes: o.MaxResponseBytes, MaxErrors: o.MaxErrors})
	return cache
}
