package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, opts Options, path string, header ...string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux, opts)
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	r := res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var assetRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

// Each page is served with its policy, and every file it references is served from the
// binary: a build that lost a file, or a page that points outside the server, fails here.
func TestPagesReferenceOnlyTheirOwnAssets(t *testing.T) {
	all := Options{Playground: true, Dashboard: true}
	for _, page := range []string{"/", "/dashboard"} {
		res := serve(t, all, page)
		html := body(t, res)
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: got %d %s", page, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q; want every request kept on the server", page, csp)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q; want no-cache", page, cc)
		}
		refs := assetRef.FindAllStringSubmatch(html, -1)
		if len(refs) < 2 {
			t.Fatalf("%s references %d files; want its script and icon at least:\n%s", page, len(refs), html)
		}
		for _, ref := range refs {
			url := ref[1]
			if !strings.HasPrefix(url, "/") || strings.HasPrefix(url, "//") {
				t.Errorf("%s references %s, not a path of the server", page, url)
				continue
			}
			if res := serve(t, all, url); res.StatusCode != http.StatusOK {
				t.Errorf("%s references %s, which answers %d", page, url, res.StatusCode)
			}
		}
	}
}

func TestAssetsAreCachedAndCompressed(t *testing.T) {
	page := body(t, serve(t, Options{Dashboard: true}, "/dashboard"))
	script := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(page)
	if script == nil {
		t.Fatalf("no script in the dashboard page:\n%s", page)
	}
	res := serve(t, Options{Dashboard: true}, script[1], "Accept-Encoding", "gzip")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%s: got %d, Content-Encoding %q; want 200 gzip", script[1], res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("%s: Cache-Control %q; want immutable (names carry their content's hash)", script[1], cc)
	}
	if js := body(t, res); !strings.Contains(js, "inventoryAlerts") {
		t.Errorf("%s does not hold the dashboard's code", script[1])
	}
}

func TestOptionsTurnPagesOff(t *testing.T) {
	cases := []struct {
		opts Options
		path string
		want int
	}{
		{Options{Dashboard: true}, "/", http.StatusNotFound},
		{Options{Playground: true}, "/dashboard", http.StatusNotFound},
		{Options{}, "/favicon.svg", http.StatusNotFound},
		{Options{Playground: true}, "/assets/", http.StatusNotFound}, // no directory listing
		{Options{Playground: true}, "/nothing", http.StatusNotFound},
	}
	for _, c := range cases {
		if got := serve(t, c.opts, c.path).StatusCode; got != c.want {
			t.Errorf("%+v %s: got %d; want %d", c.opts, c.path, got, c.want)
		}
	}
}
