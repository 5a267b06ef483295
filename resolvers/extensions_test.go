package resolvers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// apqTestSchema is a tiny schema for testing extensions through a real gqlgen handler:
// cheap costs 1, products(first: n) costs n.
var apqTestSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
	type Query {
		cheap: String!
		products(first: Int!): [String!]!
	}
`})

type apqClientKey struct{}

// apqTestHandler returns a gqlgen POST handler on apqTestSchema with exts, in order. Every
// operation answers {"ok": true}. The X-Client header reaches the extensions' context as
// apqClientOf.
func apqTestHandler(exts ...graphql.HandlerExtension) http.Handler {
	srv := handler.New(&graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return apqTestSchema },
		ComplexityFunc: func(_ context.Context, _, field string, _ int, args map[string]any) (int, bool) {
			if n, ok := args["first"].(int64); ok && field == "products" {
				return int(n), true
			}
			return 1, true
		},
		ExecFunc: func(context.Context) graphql.ResponseHandler {
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"ok":true}`)})
		},
	})
	srv.AddTransport(transport.POST{})
	for _, e := range exts {
		srv.Use(e)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), apqClientKey{}, r.Header.Get("X-Client"))
		srv.ServeHTTP(w, r.WithContext(ctx))
	})
}

// apqClientOf returns the X-Client header of the request in ctx.
func apqClientOf(ctx context.Context) string {
	s, _ := ctx.Value(apqClientKey{}).(string)
	return s
}

type apqResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// ok reports whether the operation ran.
func (r apqResponse) ok() bool { return string(r.Data) == `{"ok":true}` && len(r.Errors) == 0 }

// code is the extensions.code of the first error, "" without errors.
func (r apqResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// apqRequest is a GraphQL request: query, hash (sent as a persisted query) or both.
type apqRequest struct {
	query, hash, client string
}

func apqPost(t *testing.T, h http.Handler, req apqRequest) apqResponse {
	t.Helper()
	body := map[string]any{"query": req.query}
	if req.hash != "" {
		body["extensions"] = map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": req.hash}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Client", req.client)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var resp apqResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response %q: %v", w.Body.String(), err)
	}
	return resp
}
