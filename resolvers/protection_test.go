package resolvers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
)

// faultyBrands is the real catalog except for Brands, which fails as the test says.
type faultyBrands struct {
	resolvers.Catalog
	fail func() ([]*model.Brand, error)
}

func (f faultyBrands) Brands(context.Context) ([]*model.Brand, error) { return f.fail() }

func withFaultyBrands(fail func() ([]*model.Brand, error)) apiOption {
	return func(c *resolvers.Config) { c.Catalog = faultyBrands{Catalog: c.Catalog, fail: fail} }
}

func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	a := newAPI(t, 5, withFaultyBrands(func() ([]*model.Brand, error) {
		return nil, errors.New("dial tcp 10.0.0.7:5432: password authentication failed for user admin")
	}))
	r := a.do("", `{ brands { id } categories { slug } }`, nil)
	if code := r.code(t); code != "INTERNAL" || r.Errors[0].Message != "internal error" {
		t.Fatalf("got %s %q; want INTERNAL \"internal error\"", code, r.Errors[0].Message)
	}
	if r.Data != nil {
		t.Errorf("data: got %v; want null (brands is non-null)", r.Data)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "password authentication failed") || !strings.Contains(logs, "path=brands") {
		t.Errorf("log: got %q; want the internal error once, with its path", logs)
	}
}

func TestPanicsAreRecoveredAsInternal(t *testing.T) {
	a := newAPI(t, 5, withFaultyBrands(func() ([]*model.Brand, error) { panic("nil map write in brand cache") }))
	r := a.do("", `{ brands { id } }`, nil)
	if code := r.code(t); code != "INTERNAL" || strings.Contains(r.Errors[0].Message, "nil map") {
		t.Fatalf("got %s %q; want INTERNAL without the panic text", code, r.Errors[0].Message)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "nil map write") || !strings.Contains(logs, "goroutine") {
		t.Errorf("log: got %q; want the panic with its stack", logs)
	}
	a.ok("", `{ categories { slug } }`, nil) // the server lives on
}

func TestDepthAndComplexityLimits(t *testing.T) {
	a := newAPI(t, 5, func(c *resolvers.Config) { c.DepthLimit, c.ComplexityLimit = 5, 400 })
	deep := `{ categories { children { children { children { children { children { slug } } } } } } }`
	if code := a.do("", deep, nil).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("depth 6 with limit 5: got %s; want BAD_USER_INPUT", code)
	}
	a.ok("", `{ categories { children { slug } } }`, nil) // 160 + 10 x (10 + 5 x 1)

	wide := `{ products(first: 100) { edges { node { id sku name description } } } }`
	if code := a.do("", wide, nil).code(t); code != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("100 products x 6 fields with limit 400: got %s; want COMPLEXITY_LIMIT_EXCEEDED", code)
	}
	a.ok("", `{ products(first: 10) { edges { node { id sku } } } }`, nil) // 160 + 10 x 4
}

func TestIntrospectionOnlyWithPlayground(t *testing.T) {
	on := newAPI(t, 0)
	on.ok("", `{ __schema { queryType { name } } }`, nil)
	off := newAPI(t, 0, func(c *resolvers.Config) { c.Introspection = false })
	if r := off.do("", `{ __schema { queryType { name } } }`, nil); len(r.Errors) == 0 {
		t.Error("introspection answered with the playground off")
	}
}

// Suggestions describe the schema: with introspection off, neither field nor argument
// errors carry them.
func TestNoSuggestionsWithoutIntrospection(t *testing.T) {
	off := newAPI(t, 0, func(c *resolvers.Config) { c.Introspection = false })
	for _, q := range []string{`{ produts { totalCount } }`, `{ products(frist: 1) { totalCount } }`} {
		r := off.do("", q, nil)
		if code := r.code(t); code != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(r.Errors[0].Message, "Did you mean") {
			t.Errorf("%s: got %s %q; want a validation error without suggestions", q, code, r.Errors[0].Message)
		}
	}
	on := newAPI(t, 0)
	if r := on.do("", `{ produts { totalCount } }`, nil); !strings.Contains(r.Errors[0].Message, "Did you mean") {
		t.Errorf("with the playground on: got %q; want a suggestion", r.Errors[0].Message)
	}
}
