// Package web serves the pages of the API for people: the GraphiQL playground at / and the
// merchandisers' dashboard at /dashboard. Their sources are beside this file (a Vite
// project, see README.md); the built files in dist/ are committed and embedded in the
// binary, so a page loads nothing from outside the server.
package web

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

//go:embed all:dist
var dist embed.FS

// Options chooses which pages are served; their assets are served whenever a page is.
type Options struct {
	Playground bool
	Dashboard  bool
}

// contentSecurityPolicy keeps every request of a page on its own origin (its websocket
// included). Styles may be inline: the editor and the charts set style attributes.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; worker-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Register adds to mux the pages that opts turns on, their assets under /assets/ and the
// icon, all compressed for clients that accept it.
func Register(mux *http.ServeMux, opts Options) {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at compile time: it is there
	}
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, gzhttp.GzipHandler(h)) }
	if opts.Playground {
		handle("GET /{$}", page(root, "index.html"))
	}
	if opts.Dashboard {
		handle("GET /dashboard", page(root, "dashboard/index.html"))
	}
	if opts.Playground || opts.Dashboard {
		files := http.FileServerFS(root)
		// Asset names carry a hash of their content: they never change, so they are cached for good.
		handle("GET /assets/{name}", withHeader("Cache-Control", "public, max-age=31536000, immutable", files))
		handle("GET /favicon.svg", withHeader("Cache-Control", "public, max-age=86400", files))
	}
}

// page serves one HTML page, revalidated on every load so that a new build is picked up.
func page(root fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeFileFS(w, r, root, name)
	})
}

func withHeader(key, value string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(key, value)
		next.ServeHTTP(w, r)
	})
}
