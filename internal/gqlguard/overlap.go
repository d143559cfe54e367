package gqlguard

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
)

// This file is a port of gqlparser v2.5.64's OverlappingFieldsCanBeMerged
// (validator/rules/overlapping_fields_can_be_merged.go, MIT License,
// Copyright (c) 2018 Adam Scarr), itself a port of graphql-js. The
// algorithm, its memos and its messages are gqlparser's; what is added is
// what keeps it from being quadratic in the document (graphql-js
// CVE-2023-26144, graphql-php #1906, graphql-core #270):
//
//   - a budget: every comparison, every memo entry and every selection
//     collected spends one unit; when the budget is gone the rule reports
//     one error saying so and does nothing more;
//   - identical fields (same parent type, name, arguments and shape of
//     selections; see shape) are kept once: they cannot conflict with one
//     another and conflict with a third field exactly alike, so 30,000
//     __typename cost 30,000 units, not 450 million;
//   - a fragment spread twice in one selection set is compared once;
//   - it stops looking once enough conflicts are found to fill the error
//     cap, since no more would be shown.
//
// The algorithm's steps (A) to (J) are described in gqlparser's source.

// overlapRule is the budgeted rule for one validation.
func overlapRule(v *validation) core.RuleFunc {
	return func(observers *core.Events, addError core.AddErrFunc) {
		o := &overlap{
			v:              v,
			fieldsFragment: make(map[fieldsFragmentKey]bool),
			fragmentPairs:  make(map[[2]string]bool),
			collected:      make(map[selectionSetKey]*collected),
			shapes:         make(map[*ast.Field]int),
			interned:       make(map[string]int),
		}
		check := func(w *core.Walker, set ast.SelectionSet) {
			if o.exhausted || v.full() {
				return
			}
			o.walker, o.found = w, 0
			for _, c := range o.withinSelectionSet(set) {
				c.report(addError)
			}
			if o.exhausted {
				addError(
					core.Message("The document is too complex to validate: checking that its fields merge needs more than %d comparisons. Split it, or use fewer fields with the same name.", v.budget),
					limitOption(VarValidationBudget),
				)
			}
		}
		observers.OnOperation(func(w *core.Walker, op *ast.OperationDefinition) { check(w, op.SelectionSet) })
		observers.OnField(func(w *core.Walker, f *ast.Field) {
			// Fields of fragments are checked from the fragment definition;
			// checking them again from each operation would repeat errors.
			if w.CurrentOperation != nil {
				check(w, f.SelectionSet)
			}
		})
		observers.OnInlineFragment(func(w *core.Walker, f *ast.InlineFragment) { check(w, f.SelectionSet) })
		observers.OnFragment(func(w *core.Walker, f *ast.FragmentDefinition) { check(w, f.SelectionSet) })
	}
}

type overlap struct {
	v         *validation
	walker    *core.Walker
	exhausted bool
	found     int // conflicts found by this check, not yet reported (nested ones included)

	// fieldsFragment records a set of fields compared with a fragment (by
	// identity and name), fragmentPairs two fragments compared (both
	// orders); the value is whether the comparison was mutually exclusive.
	fieldsFragment map[fieldsFragmentKey]bool
	fragmentPairs  map[[2]string]bool
	collected      map[selectionSetKey]*collected
	shapes         map[*ast.Field]int
	interned       map[string]int
}

type fieldsFragmentKey struct {
	fields   *fieldsMap
	fragment string
}

// spend takes n units from the budget; false once it is gone.
func (o *overlap) spend(n int) bool {
	if o.exhausted {
		return false
	}
	o.v.spent += n
	if o.v.spent > o.v.budget {
		o.exhausted = true
		return false
	}
	return true
}

// stop reports whether to look no further: out of budget, or enough
// conflicts found to fill the error cap.
func (o *overlap) stop() bool { return o.exhausted || o.v.errors+o.found > o.v.maxErrors }

// seen checks and records a memo entry: false exclusivity is a superset
// of true, so a pair compared without it covers both.
func seen[K comparable](m map[K]bool, k K, exclusive bool) bool {
	prev, ok := m[k]
	if ok && (exclusive || !prev) {
		return true
	}
	m[k] = exclusive
	return false
}

func (o *overlap) withinSelectionSet(set ast.SelectionSet) []*conflict {
	if len(set) == 0 {
		return nil
	}
	c := o.collect(set)
	var out []*conflict
	o.within(&out, c.fields) // (A)
	for i, a := range c.spreads {
		if o.stop() {
			break
		}
		o.betweenFieldsAndFragment(&out, false, c.fields, a) // (B)
		for _, b := range c.spreads[i+1:] {
			o.betweenFragments(&out, false, a, b) // (C)
		}
	}
	return out
}

func (o *overlap) betweenFieldsAndFragment(out *[]*conflict, exclusive bool, fields *fieldsMap, spread *ast.FragmentSpread) {
	if o.stop() || seen(o.fieldsFragment, fieldsFragmentKey{fields, spread.Name}, exclusive) || !o.spend(1) {
		return
	}
	if spread.Definition == nil {
		return
	}
	b := o.collect(spread.Definition.SelectionSet)
	if fields == b.fields {
		return // a fragment is not compared with itself
	}
	o.between(out, exclusive, fields, b.fields) // (D)
	for _, s := range b.spreads {
		o.betweenFieldsAndFragment(out, exclusive, fields, s) // (E)
	}
}

func (o *overlap) betweenFragments(out *[]*conflict, exclusive bool, a, b *ast.FragmentSpread) {
	if a.Name == b.Name || o.stop() {
		return
	}
	if seen(o.fragmentPairs, [2]string{a.Name, b.Name}, exclusive) || !o.spend(1) {
		return
	}
	o.fragmentPairs[[2]string{b.Name, a.Name}] = o.fragmentPairs[[2]string{a.Name, b.Name}]
	if a.Definition == nil || b.Definition == nil {
		return
	}
	ca, cb := o.collect(a.Definition.SelectionSet), o.collect(b.Definition.SelectionSet)
	o.between(out, exclusive, ca.fields, cb.fields) // (F)
	for _, s := range cb.spreads {
		o.betweenFragments(out, exclusive, a, s) // (G)
	}
	for _, s := range ca.spreads {
		o.betweenFragments(out, exclusive, s, b) // (G)
	}
}

func (o *overlap) betweenSubSelections(exclusive bool, setA, setB ast.SelectionSet) []*conflict {
	var out []*conflict
	a, b := o.collect(setA), o.collect(setB)
	o.between(&out, exclusive, a.fields, b.fields) // (H)
	for _, s := range b.spreads {
		o.betweenFieldsAndFragment(&out, exclusive, a.fields, s) // (I)
	}
	for _, s := range a.spreads {
		o.betweenFieldsAndFragment(&out, exclusive, b.fields, s) // (I)
	}
	for _, sa := range a.spreads {
		if o.stop() {
			break
		}
		for _, sb := range b.spreads {
			o.betweenFragments(&out, exclusive, sa, sb) // (J)
		}
	}
	return out
}

func (o *overlap) within(out *[]*conflict, fields *fieldsMap) {
	for _, name := range fields.seq {
		group := fields.data[name]
		for i, a := range group {
			for _, b := range group[i+1:] {
				if o.stop() || !o.spend(1) {
					return
				}
				o.add(out, o.findConflict(false, a, b))
			}
		}
	}
}

// between compares two sets of fields, walking the smaller one.
func (o *overlap) between(out *[]*conflict, exclusive bool, a, b *fieldsMap) {
	small, large := a, b
	if len(b.seq) < len(a.seq) {
		small, large = b, a
	}
	if !o.spend(len(small.seq)) {
		return
	}
	for _, name := range small.seq {
		other, ok := large.data[name]
		if !ok {
			continue
		}
		for _, x := range small.data[name] {
			for _, y := range other {
				if o.stop() || !o.spend(1) {
					return
				}
				fa, fb := x, y
				if small != a {
					fa, fb = y, x
				}
				o.add(out, o.findConflict(exclusive, fa, fb))
			}
		}
	}
}

func (o *overlap) add(out *[]*conflict, c *conflict) {
	if c != nil {
		*out = append(*out, c)
		o.found++
	}
}

func (o *overlap) findConflict(parentExclusive bool, a, b *ast.Field) *conflict {
	if a.ObjectDefinition == nil || b.ObjectDefinition == nil {
		return nil
	}
	exclusive := parentExclusive || (a.ObjectDefinition.Name != b.ObjectDefinition.Name &&
		a.ObjectDefinition.Kind == ast.Object && b.ObjectDefinition.Kind == ast.Object &&
		a.Definition != nil && b.Definition != nil)
	name := a.Name
	if a.Alias != "" {
		name = a.Alias
	}
	if !exclusive {
		if a.Name != b.Name {
			return &conflict{responseName: name, message: fmt.Sprintf(`"%s" and "%s" are different fields`, a.Name, b.Name), position: b.Position}
		}
		if !o.sameArguments(a.Arguments, b.Arguments) {
			return &conflict{responseName: name, message: "they have differing arguments", position: b.Position}
		}
	}
	if a.Definition != nil && b.Definition != nil && typesConflict(o.walker, a.Definition.Type, b.Definition.Type) {
		return &conflict{
			responseName: name,
			message:      fmt.Sprintf(`they return conflicting types "%s" and "%s"`, a.Definition.Type.String(), b.Definition.Type.String()),
			position:     b.Position,
		}
	}
	sub := o.betweenSubSelections(exclusive, a.SelectionSet, b.SelectionSet)
	if len(sub) == 0 {
		return nil
	}
	return &conflict{responseName: name, sub: sub, position: b.Position}
}

// sameArguments compares argument lists in any order; each pair of
// arguments looked at is paid for, so a field with thousands of
// arguments cannot make one comparison expensive.
func (o *overlap) sameArguments(as, bs ast.ArgumentList) bool {
	if len(as) != len(bs) {
		return false
	}
	if !o.spend(len(as) * len(bs)) {
		return true // out of budget: the rule reports that instead
	}
	for _, a := range as {
		if !slices.ContainsFunc(bs, func(b *ast.Argument) bool { return a.Name == b.Name && sameValue(a.Value, b.Value) }) {
			return false
		}
	}
	return true
}

// sameValue is gqlparser's: input object fields compare in name order,
// list items in the order written.
func sameValue(a, b *ast.Value) bool {
	if a.Kind != b.Kind || a.Raw != b.Raw || len(a.Children) != len(b.Children) {
		return false
	}
	ca, cb := a.Children, b.Children
	if a.Kind == ast.ObjectValue {
		ca, cb = sortedByName(ca), sortedByName(cb)
	}
	for i := range ca {
		if ca[i].Name != cb[i].Name || !sameValue(ca[i].Value, cb[i].Value) {
			return false
		}
	}
	return true
}

func sortedByName(c ast.ChildValueList) ast.ChildValueList {
	s := slices.Clone(c)
	slices.SortStableFunc(s, func(x, y *ast.ChildValue) int { return strings.Compare(x.Name, y.Name) })
	return s
}

// typesConflict reports whether two types cannot both apply to one value:
// list and non-null wrappers must match, and leaf types must be the same.
func typesConflict(w *core.Walker, a, b *ast.Type) bool {
	if a.NonNull != b.NonNull || (a.Elem == nil) != (b.Elem == nil) {
		return true
	}
	if a.Elem != nil {
		return typesConflict(w, a.Elem, b.Elem)
	}
	ta, tb := w.Schema.Types[a.NamedType], w.Schema.Types[b.NamedType]
	if ta.IsLeafType() || tb.IsLeafType() {
		return ta.Name != tb.Name
	}
	return false
}

// conflict is gqlparser's ConflictMessage.
type conflict struct {
	responseName string
	message      string
	sub          []*conflict
	position     *ast.Position
}

func (c *conflict) write(buf *bytes.Buffer) {
	if len(c.sub) == 0 {
		buf.WriteString(c.message)
		return
	}
	for i, s := range c.sub {
		fmt.Fprintf(buf, `subfields "%s" conflict because `, s.responseName)
		s.write(buf)
		if i != len(c.sub)-1 {
			buf.WriteString(" and ")
		}
	}
}

func (c *conflict) report(addError core.AddErrFunc) {
	var buf bytes.Buffer
	c.write(&buf)
	addError(
		core.Message(`Fields "%s" conflict because %s. Use different aliases on the fields to fetch both if this was intentional.`, c.responseName, buf.String()),
		core.At(c.position),
	)
}
