package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/resolvers"
)

func newTestLimits(t testing.TB, rate, threshold int, cooldown time.Duration) *limits {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := newLimits(config.Config{RateLimitPerMin: rate, MaxConnsPerIP: 10, AbuseThreshold: threshold, AbuseWindow: time.Minute, AbuseCooldown: cooldown},
		limitsOptions{Log: log, Registry: realtime.NewRegistry(), Present: resolvers.ErrorPresenter(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

// opCtx is the context of an operation of kind by user, as the executor
// hands it to the interceptor.
func opCtx(user string, kind ast.Operation) context.Context {
	ctx := auth.WithViewer(context.Background(), auth.Viewer{UserID: user})
	field := &ast.Field{Name: "createTask", Alias: "createTask"}
	if kind == ast.Subscription {
		field.Name, field.Alias = "taskUpdates", "taskUpdates"
	}
	return graphql.WithOperationContext(ctx, &graphql.OperationContext{
		Operation: &ast.OperationDefinition{Operation: kind, SelectionSet: ast.SelectionSet{field}},
	})
}

// ran is the handler of an operation that ran.
func ran(context.Context) graphql.ResponseHandler {
	return graphql.OneShot(&graphql.Response{Data: []byte(`{}`)})
}

func runOp(l *limits, ctx context.Context) *graphql.Response {
	return l.operation(ctx, ran)(ctx)
}

// code of a response: its first error's, or "" when it ran.
func code(r *graphql.Response) (string, any) {
	if len(r.Errors) == 0 {
		return "", nil
	}
	return r.Errors[0].Extensions["code"].(string), r.Errors[0].Extensions["retryAfter"]
}

// An operation on a connection still open when its user is blocked (the
// block's close races it) is refused RATE_LIMITED for the rest of the
// cooldown — queries too.
func TestOperationsOfABlockedUserAreRefused(t *testing.T) {
	l := newTestLimits(t, 1, 2, time.Minute)
	sub := opCtx("alice", ast.Subscription)
	if c, _ := code(runOp(l, sub)); c != "" {
		t.Fatalf("first subscribe: %s", c)
	}
	for i := range 2 {
		if c, ra := code(runOp(l, sub)); c != "RATE_LIMITED" || ra != 60 {
			t.Fatalf("refusal %d: %s retryAfter %v, want RATE_LIMITED 60", i+1, c, ra)
		}
	}
	// Blocked now: a query, not rate-limited, is refused for the cooldown.
	if c, ra := code(runOp(l, opCtx("alice", ast.Query))); c != "RATE_LIMITED" || ra != 60 {
		t.Fatalf("query while blocked: %s retryAfter %v, want RATE_LIMITED 60 (the cooldown)", c, ra)
	}
	if c, _ := code(runOp(l, opCtx("bob", ast.Mutation))); c != "" {
		t.Fatalf("bob: %s", c)
	}
}

func TestQueriesAreNotCounted(t *testing.T) {
	l := newTestLimits(t, 1, 1000, time.Minute)
	for range 100 {
		if c, _ := code(runOp(l, opCtx("alice", ast.Query))); c != "" {
			t.Fatalf("query: %s", c)
		}
	}
	if c, _ := code(runOp(l, opCtx("alice", ast.Mutation))); c != "" {
		t.Fatalf("the first mutation after 100 queries: %s", c)
	}
}

// A resume pays for the log it scans: nothing extra for a short one, one
// operation per 1,000 entries beyond, so a client resuming from far back
// again and again runs out of its rate limit as it would running that many
// operations.
func TestResumeIsChargedForTheLogItScans(t *testing.T) {
	l := newTestLimits(t, 10, 1000, time.Minute)
	ctx := opCtx("alice", ast.Subscription)
	if err := l.chargeReplay(ctx, "alice", 999); err != nil {
		t.Fatalf("a resume over 999 entries: %v, want no charge", err)
	}
	if err := l.chargeReplay(ctx, "alice", 9_000); err != nil {
		t.Fatalf("a resume over 9,000 entries with 10 operations left: %v", err)
	}
	// 1 operation left of 10: a resume over 2,000 entries needs 2.
	err := l.chargeReplay(ctx, "alice", 2_000)
	var e *errs.Error
	if !errors.As(err, &e) || e.Code != errs.RateLimited || e.RetryAfter <= 0 {
		t.Fatalf("a resume over 2,000 entries with 1 operation left: %v, want RATE_LIMITED with retryAfter", err)
	}
	if c, _ := code(runOp(l, ctx)); c != "" {
		t.Fatalf("the refused resume took tokens: a subscribe after it is %s", c)
	}
	if c, _ := code(runOp(l, ctx)); c != "RATE_LIMITED" {
		t.Fatalf("the 11th operation of the minute: %q, want RATE_LIMITED", c)
	}
	// A resume over more than the burst costs the burst: always possible
	// after a full minute.
	if err := newTestLimits(t, 10, 1000, time.Minute).chargeReplay(ctx, "bob", 1_000_000); err != nil {
		t.Fatalf("a resume over 1,000,000 entries on a full bucket: %v", err)
	}
}

// BenchmarkOperation is what the limits add to an operation: a query
// (block checks), a subscribe and a mutation (block checks and the rate
// limiter), for a user within their limit.
func BenchmarkOperation(b *testing.B) {
	l := newTestLimits(b, 1<<30, 20, time.Minute)
	h := ran(context.Background())
	next := func(context.Context) graphql.ResponseHandler { return h }
	for _, kind := range []ast.Operation{ast.Query, ast.Subscription, ast.Mutation} {
		b.Run(string(kind), func(b *testing.B) {
			ctx := opCtx("user-1234", kind)
			b.ReportAllocs()
			for b.Loop() {
				l.operation(ctx, next)
			}
		})
	}
}
