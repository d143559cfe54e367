package gqlguard

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// WalkBound is a gqlgen extension that measures a document before gqlgen
// parses and validates it, and refuses it when validation would cost too
// much:
//
//   - over MaxTokens tokens, with a message and extensions.limit (gqlgen's
//     own parser stops there too, with a bare "exceeded token limit");
//   - when gqlparser's walk would visit more than Budget nodes. The walk
//     re-enters every fragment once for each operation that reaches it and
//     once for each fragment definition that reaches it, and every rule
//     runs at every visit, so a 75 KB chain of fragments costs millions of
//     visits, and a misspelled field in it millions of errors (measured: 2
//     million errors and 10 s for one document).
//
// A document already in Cache was validated before and is not measured
// again, nor one that cannot be over either bound (short, and without
// fragment spreads). Others are parsed here and again by gqlgen: parsing
// is linear and bounded by the token limit; the walk is what is not.
type WalkBound struct {
	Cache     graphql.Cache[*ast.QueryDocument]
	MaxTokens int
	Budget    int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = WalkBound{}

// ExtensionName implements graphql.HandlerExtension.
func (WalkBound) ExtensionName() string { return "WalkBound" }

// Validate implements graphql.HandlerExtension.
func (WalkBound) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters refuses a document over the bounds; any other
// parse error is left for gqlgen to report as usual.
func (b WalkBound) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	// Without "..." there is no fragment spread, so the walk visits each
	// node once; a document no longer than the token limit has no more
	// tokens, nor nodes, than that. Most hand-written queries are such,
	// and are not parsed twice.
	if n := len(p.Query); n <= b.MaxTokens && weight(n)+n <= b.Budget && !strings.Contains(p.Query, "...") {
		return nil
	}
	if b.Cache != nil {
		if _, ok := b.Cache.Get(ctx, p.Query); ok {
			return nil
		}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, b.MaxTokens)
	if err != nil {
		if gerr, ok := err.(*gqlerror.Error); ok && strings.HasPrefix(gerr.Message, "exceeded token limit") {
			return refusal(VarMaxTokens, "The document has more than %d tokens (names, punctuation, values): send a smaller one.", b.MaxTokens)
		}
		return nil
	}
	if _, ok := WalkCost(doc, b.Budget); !ok {
		return refusal(VarValidationBudget, "The document is too complex to validate: it would visit more than %d fields, arguments and fragments (each fragment counts once for every operation and fragment that uses it). Use fewer, shallower fragments.", b.Budget)
	}
	return nil
}

// WalkCost is how many nodes (fields, fragment spreads, inline fragments,
// directives, argument values; weighted by their text, see weight)
// gqlparser's validation walk visits in doc:
// every operation with each fragment it reaches once, and every fragment
// definition with each fragment it reaches once. It stops counting past
// limit (ok false). Its own cost is linear in the document plus what it
// counts, so at most the limit: each fragment's own size and spreads are
// found once, and each root then only follows spreads.
func WalkCost(doc *ast.QueryDocument, limit int) (cost int, ok bool) {
	type fragment struct {
		size    int
		spreads []string
	}
	frags := make(map[string]*fragment, len(doc.Fragments))
	for _, f := range doc.Fragments {
		if _, dup := frags[f.Name]; !dup { // the walker resolves a name to its first definition
			fr := &fragment{}
			fr.size = directivesSize(f.Directives) + setSize(f.SelectionSet, &fr.spreads)
			frags[f.Name] = fr
		}
	}
	var stack []string
	// root adds one root's own size and every fragment it reaches.
	root := func(size int, spreads []string) bool {
		cost += size
		seen := make(map[string]bool)
		stack = append(stack[:0], spreads...)
		for len(stack) > 0 && cost <= limit {
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			fr := frags[name]
			if fr == nil || seen[name] {
				continue
			}
			seen[name] = true
			cost += fr.size
			stack = append(stack, fr.spreads...)
		}
		return cost <= limit
	}
	for _, op := range doc.Operations {
		var spreads []string
		size := weight(len(op.Name)) + directivesSize(op.Directives) + setSize(op.SelectionSet, &spreads)
		for _, v := range op.VariableDefinitions {
			size += weight(len(v.Variable)+len(v.Type.String())) + valueSize(v.DefaultValue) + directivesSize(v.Directives)
		}
		if !root(size, spreads) {
			return cost, false
		}
	}
	for _, f := range doc.Fragments {
		var spreads []string
		if !root(weight(len(f.Name)+len(f.TypeCondition))+directivesSize(f.Directives)+setSize(f.SelectionSet, &spreads), spreads) {
			return cost, false
		}
	}
	return cost, true
}

// A node weighs 1, plus 1 per 64 bytes of the text it carries (names,
// literal values): rules hash, compare and quote that text at each visit,
// and error messages echo it, so a 200 KB field name reached from many
// operations weighs what it costs.
func weight(text int) int { return 1 + text/64 }

// setSize weighs a selection set's nodes, not following spreads, and
// appends the names it spreads.
func setSize(set ast.SelectionSet, spreads *[]string) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			text := len(s.Name)
			if s.Alias != s.Name { // the parser sets Alias to Name when there is none
				text += len(s.Alias)
			}
			n += weight(text) + directivesSize(s.Directives) + setSize(s.SelectionSet, spreads)
			n += argumentsSize(s.Arguments)
		case *ast.InlineFragment:
			n += weight(len(s.TypeCondition)) + directivesSize(s.Directives) + setSize(s.SelectionSet, spreads)
		case *ast.FragmentSpread:
			n += weight(len(s.Name)) + directivesSize(s.Directives)
			*spreads = append(*spreads, s.Name)
		}
	}
	return n
}

func directivesSize(ds ast.DirectiveList) int {
	n := 0
	for _, d := range ds {
		n += weight(len(d.Name)) + argumentsSize(d.Arguments)
	}
	return n
}

func argumentsSize(args ast.ArgumentList) int {
	n := 0
	for _, a := range args {
		n += weight(len(a.Name)) - 1 + valueSize(a.Value)
	}
	return n
}

func valueSize(v *ast.Value) int {
	if v == nil {
		return 0
	}
	n := weight(len(v.Raw))
	for _, c := range v.Children {
		n += weight(len(c.Name)) - 1 + valueSize(c.Value)
	}
	return n
}
