package resolvers

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// depthLimit refuses operations nested deeper than max fields; complexity alone would let a
// narrow but very deep query through. Introspection fields do not count: they are only
// served when the playground is on, and GraphiQL's own query is deep.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	w := depthWalker{fragments: oc.Doc.Fragments, depths: map[string]int{}}
	if depth := w.selections(oc.Operation.SelectionSet); depth > d.max {
		err := gqlerror.Errorf("the operation is %d fields deep; the limit is %d", depth, d.max)
		err.Extensions = map[string]any{"code": string(model.CodeBadUserInput)}
		return err
	}
	return nil
}

// depthWalker measures selection depth, each fragment once however often it is spread:
// following every spread would take exponential time on fragments that spread the next
// one twice.
type depthWalker struct {
	fragments ast.FragmentDefinitionList
	depths    map[string]int
}

// selections is the depth of the deepest field under set.
func (w depthWalker) selections(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		d := 0
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = 1 + w.selections(s.SelectionSet)
		case *ast.InlineFragment:
			d = w.selections(s.SelectionSet)
		case *ast.FragmentSpread:
			d = w.fragment(s.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

func (w depthWalker) fragment(name string) int {
	if d, ok := w.depths[name]; ok {
		return d
	}
	w.depths[name] = 0 // a cycle, which validation refuses anyway, ends here
	d := 0
	if f := w.fragments.ForName(name); f != nil {
		d = w.selections(f.SelectionSet)
	}
	w.depths[name] = d
	return d
}
