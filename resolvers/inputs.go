package resolvers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// inputCheck refuses, before anything runs, argument values that the schema's types admit
// but that gqlgen's coercion or the database would turn into an internal error:
//   - an Int outside 32 bits (the GraphQL specification's Int; gqlgen accepts 64);
//   - a NUL character in any text (PostgreSQL cannot store one);
//   - a JSON argument that is not an object, a Time that is not RFC 3339.
//
// It walks every argument of the operation, literal or variable, through input objects and
// lists, so that no resolver has to remember these checks. With introspection off it also
// refuses __schema and __type up front, as a validation error rather than a field error.
type inputCheck struct {
	schema        *ast.Schema
	introspection bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*inputCheck)(nil)

func (*inputCheck) ExtensionName() string { return "InputCheck" }

func (c *inputCheck) Validate(s graphql.ExecutableSchema) error {
	c.schema = s.Schema()
	return nil
}

func (c *inputCheck) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	return c.selections(oc, oc.Operation.SelectionSet, map[string]bool{})
}

// selections checks the arguments under set. Each fragment is checked once however often
// it is spread (its arguments are the same everywhere): following every spread would take
// exponential time on fragments that spread the next one twice, and stops cycles, which
// validation refuses anyway.
func (c *inputCheck) selections(oc *graphql.OperationContext, set ast.SelectionSet, seen map[string]bool) *gqlerror.Error {
	for _, sel := range set {
		var err *gqlerror.Error
		switch s := sel.(type) {
		case *ast.Field:
			err = c.field(oc, s, seen)
		case *ast.InlineFragment:
			err = c.selections(oc, s.SelectionSet, seen)
		case *ast.FragmentSpread:
			if f := oc.Doc.Fragments.ForName(s.Name); f != nil && !seen[s.Name] {
				seen[s.Name] = true
				err = c.selections(oc, f.SelectionSet, seen)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *inputCheck) field(oc *graphql.OperationContext, f *ast.Field, seen map[string]bool) *gqlerror.Error {
	if !c.introspection && (f.Name == "__schema" || f.Name == "__type") {
		err := gqlerror.ErrorPosf(f.Position, "introspection is disabled on this server")
		err.Extensions = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}
		return err
	}
	for _, arg := range f.Arguments {
		def := f.Definition.Arguments.ForName(arg.Name)
		if def == nil {
			continue
		}
		v, err := arg.Value.Value(oc.Variables)
		if err != nil {
			return argumentError(arg.Name, "%s", err)
		}
		if err := c.value(def.Type, v, arg.Name); err != nil {
			return err
		}
	}
	return c.selections(oc, f.SelectionSet, seen)
}

// value checks v, the value of an argument of type t at path.
func (c *inputCheck) value(t *ast.Type, v any, path string) *gqlerror.Error {
	if v == nil {
		return nil
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok { // a single value stands for a list of one
			return c.value(t.Elem, v, path)
		}
		for i, item := range list {
			if err := c.value(t.Elem, item, path+"."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		return nil
	}
	def := c.schema.Types[t.NamedType]
	if def == nil {
		return nil
	}
	switch def.Kind {
	case ast.InputObject:
		obj, _ := v.(map[string]any)
		for _, field := range def.Fields {
			if err := c.value(field.Type, obj[field.Name], path+"."+field.Name); err != nil {
				return err
			}
		}
		return nil
	case ast.Scalar:
		return scalarValue(def.Name, v, path)
	}
	return nil
}

func scalarValue(scalar string, v any, path string) *gqlerror.Error {
	switch scalar {
	case "Int":
		if n, ok := integer(v); !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return argumentError(path, "%v is not an Int: a whole number from %d to %d", v, math.MinInt32, math.MaxInt32)
		}
	case "JSON":
		if _, ok := v.(map[string]any); !ok {
			return argumentError(path, "must be a JSON object")
		}
	case "Time":
		s, ok := v.(string)
		if !ok {
			return argumentError(path, "a Time is an RFC 3339 text such as \"2026-01-31T12:00:00Z\"")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return argumentError(path, "a Time is an RFC 3339 text such as \"2026-01-31T12:00:00Z\"")
		}
	}
	if hasNUL(v) {
		return argumentError(path, "text must not contain NUL characters")
	}
	return nil
}

// integer reads an Int argument's value as gqlgen receives it: int64 from a literal,
// json.Number from variables.
func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// hasNUL reports whether any text in v, keys included, holds a NUL character.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case map[string]any:
		for k, item := range v {
			if hasNUL(k) || hasNUL(item) {
				return true
			}
		}
	case []any:
		for _, item := range v {
			if hasNUL(item) {
				return true
			}
		}
	}
	return false
}

func argumentError(path, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf("argument %s: %s", path, fmt.Sprintf(format, args...))
	err.Extensions = map[string]any{"code": string(model.CodeBadUserInput), "argumentPath": strings.Split(path, ".")}
	return err
}
