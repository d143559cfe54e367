package gqlguard

import (
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// The environment variables behind each limit. A refusal names its limit
// in extensions.limit, so a client (or the operator reading its report)
// knows which one it hit.
const (
	VarMaxTokens        = "GRAPHQL_MAX_TOKENS"
	VarMaxErrors        = "GRAPHQL_MAX_ERRORS"
	VarValidationBudget = "GRAPHQL_VALIDATION_BUDGET"
	VarComplexityLimit  = "GRAPHQL_COMPLEXITY_LIMIT"
	VarMaxResponseBytes = "GRAPHQL_MAX_RESPONSE_BYTES"
	VarIntrospection    = "GRAPHQL_INTROSPECTION"
)

// validation is one document's validation state, shared by its rules.
type validation struct {
	maxErrors int
	budget    int // for the overlapping-fields rule
	spent     int // of budget
	errors    int // reported so far, by every capped rule
}

// full reports whether the error cap is reached: the cap's own rule lets
// one error past it, so the response knows there were more (Responses).
func (v *validation) full() bool { return v.errors > v.maxErrors }

// Rules returns the validation rules for gqlgen's SetValidationRulesFn:
// gqlparser's defaults, with OverlappingFieldsCanBeMerged replaced by the
// budgeted port (overlap.go), the rules that suggest names ("Did you
// mean …?") replaced by their variants that do not, each rule's errors
// counted against one cap of maxErrors per document, and, without
// introspection, a rule refusing __schema and __type. gqlgen calls the
// function once per document it validates, so the state is per document.
//
// Suggestions go because computing one is a Levenshtein distance, whose
// cost is the product of the two names' lengths: a 200 KB field name
// spread from 30 operations cost a second of CPU and a 4 MB response.
// GraphiQL completes names from the schema instead.
//
// The server must run with SetDisableSuggestion(true) (Install does):
// gqlgen then keeps the capped FieldsOnCorrectTypeWithoutSuggestions and
// ScalarLeafsWithoutSuggestions given here; otherwise it would swap in its
// own, uncapped, suggesting ones.
func Rules(maxErrors, budget int, introspection bool) func() *rules.Rules {
	withoutSuggestions := map[string]core.Rule{
		rules.FieldsOnCorrectTypeRule.Name: rules.FieldsOnCorrectTypeRuleWithoutSuggestions,
		rules.ScalarLeafsRule.Name:         rules.ScalarLeafsRuleWithoutSuggestions,
		rules.KnownArgumentNamesRule.Name:  rules.KnownArgumentNamesRuleWithoutSuggestions,
		rules.KnownTypeNamesRule.Name:      rules.KnownTypeNamesRuleWithoutSuggestions,
		rules.ValuesOfCorrectTypeRule.Name: rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
	}
	return func() *rules.Rules {
		v := &validation{maxErrors: maxErrors, budget: budget}
		r := rules.NewRules()
		for name, f := range rules.NewDefaultRules().GetInner() {
			if alt, ok := withoutSuggestions[name]; ok {
				name, f = alt.Name, alt.RuleFunc
			}
			if name == rules.OverlappingFieldsCanBeMergedRule.Name {
				f = overlapRule(v)
			}
			r.AddRule(name, capErrors(v, f))
		}
		if !introspection {
			r.AddRule("NoSchemaIntrospection", capErrors(v, noIntrospection))
		}
		return r
	}
}

// capErrors passes a rule's errors on until the document has maxErrors+1
// of them and drops the rest.
func capErrors(v *validation, rule core.RuleFunc) core.RuleFunc {
	return func(observers *core.Events, addError core.AddErrFunc) {
		rule(observers, func(options ...core.ErrorOption) {
			v.errors++
			if v.errors <= v.maxErrors+1 {
				addError(options...)
			}
		})
	}
}

// noIntrospection is graphql-js's NoSchemaIntrospectionCustomRule: with
// introspection off, asking for it is an invalid document, not a field
// error at run time.
func noIntrospection(observers *core.Events, addError core.AddErrFunc) {
	observers.OnField(func(_ *core.Walker, f *ast.Field) {
		if f.Name == "__schema" || f.Name == "__type" {
			addError(
				core.Message(`Introspection is disabled on this server: "%s" cannot be queried.`, f.Name),
				core.At(f.Position),
				limitOption(VarIntrospection),
			)
		}
	})
}

// limitOption names the limit behind a validation error.
func limitOption(name string) core.ErrorOption {
	return func(err *gqlerror.Error) {
		if err.Extensions == nil {
			err.Extensions = map[string]any{}
		}
		err.Extensions["limit"] = name
	}
}

// refusal is a document refused for its cost before execution: gqlgen's
// validation code, so HTTP answers 422 and the error presenter shows
// BAD_USER_INPUT, and extensions.limit naming the variable.
func refusal(limit, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	errcode.Set(err, errcode.ValidationFailed)
	err.Extensions["limit"] = limit
	return err
}
