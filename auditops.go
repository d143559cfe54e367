package main

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"

	"github.com/taskpulse/taskpulse/audit"
	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
)

// auditFields is the audit log's one seam in GraphQL execution, a field
// interceptor (gqlgen AroundFields): it sees each field's name, arguments,
// result and error before presentation, and the viewer. It records
//   - mutation: a mutation's root field that succeeded — who, which field,
//     and which object: its first ID argument, or the id of what it
//     returned (never an input's text, a message or a token);
//     disconnectUser as disconnect_user (admin, target, how many);
//   - deny: any field refused FORBIDDEN or UNAUTHENTICATED, with the
//     operation's root field, its object and the server's reason;
//   - rate_limited: any field refused RATE_LIMITED;
//   - auth_failure: a refreshConnection whose token is refused.
//
// Successful queries and subscribes are not recorded here (a subscribe is,
// by the transport, once live). Renderings of events run the subscription
// field again per event and shape; they are skipped. The cost on every
// other field is one context lookup and a comparison.
func (m *Main) auditFields(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || err == nil && fc.Object != "Mutation" {
		return res, err
	}
	if err == nil {
		m.auditMutation(ctx, fc, res)
		return res, err
	}
	if _, rendering := realtime.RenderFrom(ctx); rendering {
		return res, err
	}
	m.auditRefusal(ctx, rootOf(fc), err)
	return res, err
}

// auditMutation records a mutation that succeeded.
func (m *Main) auditMutation(ctx context.Context, fc *graphql.FieldContext, res any) {
	rec := actor(ctx)
	rec.Kind, rec.Operation = audit.Mutation, fc.Field.Name
	rec.Object = firstID(fc.Field.Definition, fc.Args)
	if rec.Object == "" {
		rec.Object = idOf(res)
	}
	if fc.Field.Name == "disconnectUser" {
		// The user the record is about is the target; the admin acted.
		rec.Kind, rec.By, rec.UserID, rec.Object = audit.DisconnectUser, rec.UserID, rec.Object, ""
		rec.Count = countOf(res)
	}
	m.Audit.Log(rec)
}

// maxRefusalRecords bounds the refusal records of one operation: a query
// may repeat a forbidden field under a thousand aliases, and queries are
// not rate limited. The rest are counted in one record at the end.
const maxRefusalRecords = 5

type refusalBudgetKey struct{}

// refusalBudget counts an operation's refusal records.
type refusalBudget struct{ recorded, skipped atomic.Int32 }

// auditOperation gives each operation its refusal budget (gqlgen
// AroundOperations), and records how many refusals went over it once its
// response is made. Renderings of events are left alone.
func (m *Main) auditOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if _, rendering := realtime.RenderFrom(ctx); rendering {
		return next(ctx)
	}
	b := &refusalBudget{}
	ctx = context.WithValue(ctx, refusalBudgetKey{}, b)
	h := next(ctx)
	return func(rctx context.Context) *graphql.Response {
		resp := h(rctx)
		if n := b.skipped.Swap(0); n > 0 {
			rec := actor(ctx)
			rec.Kind, rec.Count = audit.Deny, int(n)
			rec.Reason = "more refusals in this operation, not recorded one by one"
			m.Audit.Log(rec)
		}
		return resp
	}
}

// auditRefusal records a field refused for a reason the audit log keeps.
// root is the operation's root field the refusal happened under (nil:
// the whole operation).
func (m *Main) auditRefusal(ctx context.Context, root *graphql.FieldContext, err error) {
	var e *errs.Error
	if !errors.As(err, &e) {
		return
	}
	switch e.Code {
	case errs.Forbidden, errs.Unauthenticated, errs.RateLimited:
	default:
		return
	}
	if b, ok := ctx.Value(refusalBudgetKey{}).(*refusalBudget); ok && b.recorded.Add(1) > maxRefusalRecords {
		b.skipped.Add(1)
		return
	}
	rec := actor(ctx)
	rec.Code, rec.Reason = string(e.Code), e.Message
	if root != nil {
		rec.Operation = root.Field.Name
		rec.Object = firstID(root.Field.Definition, root.Args)
	} else if graphql.HasOperationContext(ctx) {
		if oc := graphql.GetOperationContext(ctx); oc.Operation != nil {
			rec.Operation = string(oc.Operation.Operation) // query, mutation, subscription
		}
	}
	switch {
	case rec.Operation == "refreshConnection" && (e.Code == errs.Unauthenticated || e.Code == errs.Forbidden):
		m.authFailed(rec, err)
		return
	case e.Code == errs.Forbidden, e.Code == errs.Unauthenticated:
		rec.Kind = audit.Deny
	case e.Code == errs.RateLimited:
		rec.Kind = audit.RateLimited
	default:
		return
	}
	m.Audit.Log(rec)
}

// operationRefused records an operation refused before any field ran (on
// a connection whose user lost the right to it: currentRights).
func (m *Main) operationRefused(ctx context.Context, err error) { m.auditRefusal(ctx, nil, err) }

// actor is who sent an operation and over what: the viewer, and the
// connection (WebSocket) or request (HTTP, SSE) it came on.
func actor(ctx context.Context) audit.Record {
	var rec audit.Record
	if v, ok := auth.ViewerFrom(ctx); ok {
		rec.UserID = v.UserID
	}
	if c, ok := realtime.ConnFrom(ctx); ok {
		info := c.Info()
		rec.IP, rec.ConnID, rec.Transport = info.IP, info.ID, info.Transport
		if rec.UserID == "" {
			rec.UserID = info.UserID
		}
	} else if ri, ok := ctx.Value(requestInfoKey{}).(requestInfo); ok {
		rec.IP, rec.Transport = ri.ip, ri.transport
	}
	return rec
}

// rootOf is the root field fc is under (fc itself for a root field).
func rootOf(fc *graphql.FieldContext) *graphql.FieldContext {
	for fc.Parent != nil && fc.Parent.Parent != nil {
		fc = fc.Parent
	}
	if fc.Field.Field == nil {
		return nil // the operation's own context, not a field's
	}
	return fc
}

// idOf is the ID of a mutation's result: a pointer to a struct with a
// string field ID (a model type), or an ID itself (deleteX returns one).
func idOf(res any) string {
	switch v := res.(type) {
	case string:
		return v
	case *string:
		if v != nil {
			return *v
		}
		return ""
	}
	rv := reflect.ValueOf(res)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return ""
	}
	if f := rv.Elem().FieldByName("ID"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

// countOf is an Int result.
func countOf(res any) int {
	switch v := res.(type) {
	case int:
		return v
	case int32:
		return int(v)
	case int64:
		return int(v)
	}
	return 0
}
