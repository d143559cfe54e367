package gqlguard

import (
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// What the overlapping-fields rule compares: each selection set's fields
// grouped by response name, with identical fields kept once (shape).

// collected is one selection set's fields by response name and its
// fragment spreads, computed once: the memos above key on its identity.
type collected struct {
	fields  *fieldsMap
	spreads []*ast.FragmentSpread
}

// selectionSetKey identifies a selection set (a slice) by its first
// element and length, as gqlparser does: two such views of the same
// memory cannot differ.
type selectionSetKey struct {
	first *ast.Selection
	n     int
}

type shapeKey struct {
	responseName string
	shape        int
}

type fieldsMap struct {
	seq  []string // response names in document order
	data map[string][]*ast.Field
}

func (o *overlap) collect(set ast.SelectionSet) *collected {
	key := selectionSetKey{n: len(set)}
	if key.n > 0 {
		key.first = &set[0]
	}
	if c, ok := o.collected[key]; ok {
		return c
	}
	c := &collected{fields: &fieldsMap{data: make(map[string][]*ast.Field)}}
	shapes := make(map[shapeKey]bool)
	spreads := make(map[string]bool)
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		// Nested inline fragments are collected again for each level
		// that encloses them: paid for, so that nesting cannot be
		// quadratic for free.
		o.spend(len(set))
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				name := sel.Name
				if sel.Alias != "" {
					name = sel.Alias
				}
				if id := o.shape(sel); id != 0 {
					k := shapeKey{name, id}
					if shapes[k] {
						continue
					}
					shapes[k] = true
				}
				if _, ok := c.fields.data[name]; !ok {
					c.fields.seq = append(c.fields.seq, name)
				}
				c.fields.data[name] = append(c.fields.data[name], sel)
			case *ast.InlineFragment:
				walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				if !spreads[sel.Name] {
					spreads[sel.Name] = true
					c.spreads = append(c.spreads, sel)
				}
			}
		}
	}
	walk(set)
	o.collected[key] = c
	return c
}

// shape is an id shared by fields findConflict cannot tell apart: same
// parent type, name and arguments, and selections of the same shapes
// under the same response names (fragments by name). Two such fields
// never conflict with each other, except through a conflict inside their
// selections, which the check of that selection set reports anyway; and
// they conflict with a third field alike. So one stands for all of them.
// 0 means no shape (a field validation could not resolve): never merged.
// Shapes are interned bottom-up, once per field, so this is linear.
func (o *overlap) shape(f *ast.Field) int {
	if id, ok := o.shapes[f]; ok {
		return id
	}
	o.shapes[f] = 0 // until known
	if f.ObjectDefinition == nil {
		return 0
	}
	var b strings.Builder
	b.WriteString(f.ObjectDefinition.Name)
	b.WriteByte('.')
	b.WriteString(f.Name)
	for _, a := range f.Arguments {
		b.WriteByte('(')
		b.WriteString(a.Name)
		writeValue(&b, a.Value)
	}
	if !o.writeSet(&b, f.SelectionSet) {
		return 0
	}
	id, ok := o.interned[b.String()]
	if !ok {
		id = len(o.interned) + 1
		o.interned[b.String()] = id
	}
	o.shapes[f] = id
	return id
}

// writeSet writes a selection set by its children's shapes; false if a
// child has none.
func (o *overlap) writeSet(b *strings.Builder, set ast.SelectionSet) bool {
	b.WriteByte('{')
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			id := o.shape(sel)
			if id == 0 {
				return false
			}
			b.WriteString(strconv.Itoa(len(sel.Alias)))
			b.WriteByte(',')
			b.WriteString(sel.Alias)
			b.WriteString(strconv.Itoa(id))
		case *ast.InlineFragment:
			b.WriteString("...on ")
			b.WriteString(sel.TypeCondition)
			if !o.writeSet(b, sel.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			b.WriteString("...")
			b.WriteString(sel.Name)
		}
		b.WriteByte(' ')
	}
	b.WriteByte('}')
	return true
}

// writeValue writes a value unambiguously: kind, then length-prefixed raw
// text, then children.
func writeValue(b *strings.Builder, v *ast.Value) {
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(int(v.Kind)))
	b.WriteByte(',')
	b.WriteString(strconv.Itoa(len(v.Raw)))
	b.WriteByte(',')
	b.WriteString(v.Raw)
	b.WriteString(strconv.Itoa(len(v.Children)))
	for _, c := range v.Children {
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(len(c.Name)))
		b.WriteByte(',')
		b.WriteString(c.Name)
		writeValue(b, c.Value)
	}
}
