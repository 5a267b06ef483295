package elastic

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/homegoods/storefront/search"
)

// fakeServer answers GET / as a server of the given distribution ("" for none) and every
// other request with an empty search answer, never with X-Elastic-Product unless withHeader.
func fakeServer(t *testing.T, distribution string, withHeader bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var roots atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if withHeader {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
		}
		if r.URL.Path == "/" {
			roots.Add(1)
			_, _ = w.Write([]byte(`{"version":{"distribution":"` + distribution + `","number":"2.19.6"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"hits":{"total":{"value":0},"hits":[]}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &roots
}

// TestProductHeaderTransport: go-elasticsearch refuses servers that do not say they are
// Elasticsearch; the transport vouches for a server that says it is OpenSearch, asking it
// once, and for no other.
func TestProductHeaderTransport(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		distribution string
		header       bool
		wantOK       bool
		wantProbes   int32
	}{
		{"opensearch", "opensearch", false, true, 1},
		{"elasticsearch", "", true, true, 0},
		{"something else", "", false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, roots := fakeServer(t, tc.distribution, tc.header)
			es, err := New(Config{URL: srv.URL, Index: "products", Facets: search.DefaultConfig()})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				err = es.Do(ctx, "POST", "/products/_search", map[string]any{"size": 0}, nil)
			}
			if ok := err == nil; ok != tc.wantOK {
				t.Fatalf("request through the client: err %v; want success %v", err, tc.wantOK)
			}
			if !tc.wantOK && !strings.Contains(err.Error(), "Elasticsearch") {
				t.Errorf("refusal %q does not say why", err)
			}
			if got := roots.Load(); got != tc.wantProbes {
				t.Errorf("GET / asked %d times; want %d", got, tc.wantProbes)
			}
		})
	}
}
