// Package playground serves the GraphiQL page at GET / with every script,
// stylesheet and font embedded in the binary, so it works on a machine with
// no internet access (a CDN-hosted GraphiQL would show a blank page there).
//
// The page runs queries and mutations with HTTP POST to the GraphQL endpoint
// and subscriptions over graphql-transport-ws on the same URL (ws:// or
// wss:// to match the page). A Token field at the top of the page (also
// filled from a #token=<jwt> fragment, kept in localStorage) is sent as
// "Authorization: Bearer <jwt>" over HTTP and as the connection_init payload
// {"token": "<jwt>"} over WebSocket.
//
// Routing: one Handler serves the page for the exact path "/" and the assets
// under AssetsPrefix; mount it on both, e.g. with net/http's ServeMux:
//
//	pg := playground.Handler("/graphql")
//	mux.Handle("GET /{$}", pg)
//	mux.Handle("GET "+playground.AssetsPrefix, pg)
//
// The vendored bundles in assets/ come from the npm versions pinned in
// assets-src/package-lock.json; update-assets.sh reproduces them.
package playground

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// AssetsPrefix is the path under which the page's scripts, stylesheets and
// license note are served. The page refers to them relative to "/", so the
// handler must be reachable at both "/" and this prefix.
const AssetsPrefix = "/playground/assets/"

//go:embed assets
var assetFiles embed.FS

//go:embed page.html
var pageSource string

// noncePlaceholder marks the style nonce's place in the rendered page; it
// holds no character that html/template would escape.
const noncePlaceholder = "TASKPULSE-STYLE-NONCE"

// contentType is what browsers need for the extensions found in assets/;
// with X-Content-Type-Options: nosniff a wrong type would block the file.
func contentType(name string) (string, bool) {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8", true
	case ".css":
		return "text/css; charset=utf-8", true
	case ".md":
		return "text/plain; charset=utf-8", true
	}
	return "", false
}

type asset struct {
	body    []byte
	ctype   string
	etag    string // strong, quoted
	version string // short content hash used in the page's asset URLs
}

type handler struct {
	// page is the rendered page with noncePlaceholder where each response
	// puts its own style nonce.
	page   []byte
	assets map[string]asset
	// connectSrc is the fixed part of the CSP connect-src directive; the
	// request's own ws:// and wss:// origins are added per request.
	connectSrc string
}

// Handler returns the playground for a GraphQL endpoint, which is a path on
// this server ("/graphql") or an absolute http(s) URL. The page and the
// assets are rendered and hashed once, here.
func Handler(endpoint string) http.Handler {
	assets, err := loadAssets()
	if err != nil {
		// The assets are compiled in; failing here is a build defect that the
		// package's tests catch, like template.Must.
		panic(fmt.Sprintf("playground: %v", err))
	}
	page, err := renderPage(endpoint, assets)
	if err != nil {
		panic(fmt.Sprintf("playground: %v", err))
	}
	return &handler{
		page:       page,
		assets:     assets,
		connectSrc: connectSources(endpoint),
	}
}

func loadAssets() (map[string]asset, error) {
	entries, err := fs.ReadDir(assetFiles, "assets")
	if err != nil {
		return nil, err
	}
	out := make(map[string]asset, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ctype, ok := contentType(e.Name())
		if !ok {
			return nil, fmt.Errorf("asset %s: no content type for its extension", e.Name())
		}
		body, err := assetFiles.ReadFile("assets/" + e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		version := hex.EncodeToString(sum[:6])
		out[e.Name()] = asset{
			body:    body,
			ctype:   ctype,
			etag:    `"` + hex.EncodeToString(sum[:8]) + `"`,
			version: version,
		}
	}
	return out, nil
}

// renderPage fills the template: the endpoint goes into a meta tag (escaped
// by html/template) that the bootstrap script reads, and every asset URL
// carries its content hash so browsers may cache it for good.
func renderPage(endpoint string, assets map[string]asset) ([]byte, error) {
	tmpl, err := template.New("page").Funcs(template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := assets[name]
			if !ok {
				return "", fmt.Errorf("page refers to missing asset %q", name)
			}
			// Relative to "/", so the page also works behind a path prefix.
			return strings.TrimPrefix(AssetsPrefix, "/") + name + "?v=" + a.version, nil
		},
	}).Parse(pageSource)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	data := struct{ Endpoint, StyleNonce string }{endpoint, noncePlaceholder}
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	if bytes.Count(buf.Bytes(), []byte(noncePlaceholder)) != 1 {
		return nil, fmt.Errorf("page must hold the style nonce exactly once")
	}
	return buf.Bytes(), nil
}

// connectSources is 'self' plus, for an absolute endpoint on another
// origin, that origin and its WebSocket twin.
func connectSources(endpoint string) string {
	src := "'self'"
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || !validHost(u.Host) {
		return src
	}
	switch u.Scheme {
	case "http":
		return src + " http://" + u.Host + " ws://" + u.Host
	case "https":
		return src + " https://" + u.Host + " wss://" + u.Host
	}
	return src
}

// validHost accepts what may stand in a CSP source expression as a host and
// port, so a hostile Host header cannot add directives.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch {
	case r.URL.Path == "/":
		nonce := rand.Text()
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", h.csp(r, nonce))
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("X-Frame-Options", "DENY")
		// Each response has its own nonce: never reuse a stored copy.
		hdr.Set("Cache-Control", "no-store")
		page := bytes.Replace(h.page, []byte(noncePlaceholder), []byte(nonce), 1)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(page))
	case strings.HasPrefix(r.URL.Path, AssetsPrefix):
		a, ok := h.assets[strings.TrimPrefix(r.URL.Path, AssetsPrefix)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hdr.Set("Content-Type", a.ctype)
		hdr.Set("ETag", a.etag)
		if r.URL.Query().Get("v") == a.version {
			// The URL names this exact content: it never changes.
			hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			hdr.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	default:
		http.NotFound(w, r)
	}
}

// csp allows scripts, styles and connections from this origin only. Fonts
// and icons are data: URLs inside graphiql.min.css. GraphiQL's dialogs
// inject <style> elements at run time; they carry the response's nonce (the
// bootstrap hands it to them), so no 'unsafe-inline' is needed. ws:// and
// wss:// for the request's host are listed explicitly for browsers whose
// 'self' does not cover WebSocket.
func (h *handler) csp(r *http.Request, styleNonce string) string {
	connect := h.connectSrc
	if validHost(r.Host) {
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'nonce-" + styleNonce + "'",
		"font-src 'self' data:",
		"img-src 'self' data:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}
