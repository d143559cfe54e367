package resolvers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/errs"
)

// isBadInputCode reports gqlgen's own codes for documents that do not parse
// or validate; clients see them as BAD_USER_INPUT, the contract's code for
// bad input.
func isBadInputCode(code string) bool {
	switch code {
	case "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "COMPLEXITY_LIMIT_EXCEEDED":
		return true
	}
	return false
}

// ErrorPresenter is the one place errors become GraphQL errors: an
// *errs.Error keeps its message and gets extensions.code (and retryAfter,
// in whole seconds, for RATE_LIMITED); anything else is logged and shown as
// INTERNAL without its details.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gerr *gqlerror.Error
		if !errors.As(err, &gerr) {
			gerr = gqlerror.WrapPath(graphql.GetPath(ctx), err)
		}
		var e *errs.Error
		switch {
		case errors.As(err, &e):
			gerr.Message = e.Message
			setCode(gerr, string(e.Code))
			if e.Code == errs.RateLimited {
				gerr.Extensions["retryAfter"] = int(math.Ceil(e.RetryAfter.Seconds()))
			}
		case gerr.Err == nil && gerr.Extensions["code"] != nil:
			// A gqlgen error about the document or variables.
			if code, _ := gerr.Extensions["code"].(string); isBadInputCode(code) {
				setCode(gerr, string(errs.BadUserInput))
			}
		case gerr.Err == nil:
			// gqlgen reports argument and variable coercion failures as plain
			// gqlerrors without a code: they are the client's input.
			setCode(gerr, string(errs.BadUserInput))
		default:
			log.Error("internal error", "path", gerr.Path.String(), "err", err)
			gerr.Message = "internal error"
			gerr.Err = nil
			setCode(gerr, string(errs.Internal))
		}
		return gerr
	}
}

func setCode(gerr *gqlerror.Error, code string) {
	if gerr.Extensions == nil {
		gerr.Extensions = map[string]any{}
	}
	gerr.Extensions["code"] = code
}

// Recover turns a resolver panic into an INTERNAL error (logged with the
// value) instead of a crashed connection.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.Error("resolver panic", "path", graphql.GetPath(ctx).String(), "panic", fmt.Sprint(v))
		return errors.New("panic in resolver")
	}
}
