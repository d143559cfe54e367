package gqlguard

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/errs"
)

// Responses is a gqlgen extension bounding each response (each event of
// a subscription is one):
//
//   - its data, at MaxBytes: every field's JSON is estimated as it
//     resolves (name, value, punctuation, escapes). Once over, the fields
//     still to resolve fail at once without running their resolvers, and
//     the response becomes data null and one BAD_USER_INPUT error. The
//     complexity limit bounds how many fields a document asks for; this
//     bounds what they hold (lists are not paged yet, and a description
//     is up to 10 KB);
//   - its errors, at MaxErrors: the first MaxErrors are kept and one more
//     says the rest were dropped. Validation already stops collecting
//     (Rules); this also bounds errors from execution, one per list item
//     at worst. Each message is cut at maxMessage bytes.
type Responses struct {
	MaxBytes  int64
	MaxErrors int
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.RootFieldInterceptor
	graphql.FieldInterceptor
} = Responses{}

// rootConcurrency is how many root fields of one query resolve at once.
// gqlgen starts them all together, so 499 aliased lists would all be
// fetched before the first one is counted; a few at a time, the fields
// still waiting when the response is over its bound never run.
const rootConcurrency = 4

type meterKey struct{}

// meter is one response's remaining bytes; fields resolve concurrently.
type meter struct {
	left  atomic.Int64
	over  atomic.Bool
	roots chan struct{} // a semaphore of rootConcurrency
}

// ExtensionName implements graphql.HandlerExtension.
func (Responses) ExtensionName() string { return "ResponseLimits" }

// Validate implements graphql.HandlerExtension.
func (Responses) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse meters one response and trims it.
func (l Responses) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	m := &meter{roots: make(chan struct{}, rootConcurrency)}
	m.left.Store(l.MaxBytes)
	resp := next(context.WithValue(ctx, meterKey{}, m))
	if resp == nil {
		return nil // the end of a stream
	}
	if m.over.Load() {
		return &graphql.Response{Errors: gqlerror.List{l.tooLarge()}, Extensions: resp.Extensions}
	}
	if len(resp.Errors) > l.MaxErrors {
		resp.Errors = append(resp.Errors[:l.MaxErrors:l.MaxErrors], codeError(
			fmt.Sprintf("Too many errors: only the first %d are shown.", l.MaxErrors), VarMaxErrors))
	}
	for _, e := range resp.Errors {
		e.Message = shorten(e.Message)
	}
	return resp
}

// maxMessage bounds an error message: messages quote the document (a
// name, a literal), which may be as long as the request.
const maxMessage = 1024

// shorten cuts s to maxMessage bytes on a character boundary.
func shorten(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// InterceptRootField lets rootConcurrency root fields resolve at a time,
// and none once the response is over its bound.
func (l Responses) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	m, _ := ctx.Value(meterKey{}).(*meter)
	if m == nil {
		return next(ctx) // a subscription's stream: each event is metered
	}
	select {
	case m.roots <- struct{}{}:
	case <-ctx.Done():
		return graphql.Null
	}
	defer func() { <-m.roots }()
	if m.over.Load() {
		return graphql.Null
	}
	return next(ctx)
}

// InterceptField counts a field's share of the response.
func (l Responses) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	m, _ := ctx.Value(meterKey{}).(*meter)
	if m == nil {
		return next(ctx)
	}
	if m.over.Load() {
		return nil, l.stopped()
	}
	res, err := next(ctx)
	n := jsonSize(res)
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		n += int64(len(fc.Field.Alias)) + 4 // "alias":,
	}
	if m.left.Add(-n) < 0 {
		m.over.Store(true)
		return nil, l.stopped()
	}
	return res, err
}

func (l Responses) tooLarge() *gqlerror.Error {
	return codeError(fmt.Sprintf("The response would be larger than %d bytes: ask for fewer fields, items or aliases.", l.MaxBytes), VarMaxResponseBytes)
}

// stopped is what the fields left unresolved report; the response replaces
// them. A client error, so the error presenter does not log it.
func (l Responses) stopped() error {
	return errs.E(errs.BadUserInput, "response larger than %d bytes", l.MaxBytes)
}

// codeError is an error added after the error presenter ran, so it carries
// its final code itself.
func codeError(msg, limit string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": string(errs.BadUserInput), "limit": limit}}
}

// jsonSize estimates the JSON of a resolved value: strings by length and
// escapes; lists and objects by their punctuation, their items and fields
// being counted as they resolve.
func jsonSize(v any) int64 {
	switch v := v.(type) {
	case nil:
		return 4
	case string:
		return stringSize(v)
	case *string:
		if v == nil {
			return 4
		}
		return stringSize(*v)
	case time.Time, *time.Time:
		return 32
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		return stringSize(rv.String())
	case reflect.Slice, reflect.Array, reflect.Map:
		return 2 + int64(rv.Len())
	}
	return 8
}

// stringSize is a JSON string's length: quotes, and up to 6 bytes for a
// byte that must be escaped.
func stringSize(s string) int64 {
	n := int64(len(s)) + 2
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			n += 5
		}
	}
	return n
}
