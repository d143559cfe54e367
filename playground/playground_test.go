package playground

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// serve mounts the handler the way the README tells the server to.
func serve(t *testing.T, endpoint string) *httptest.Server {
	t.Helper()
	pg := Handler(endpoint)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", pg)
	mux.Handle("GET "+AssetsPrefix, pg)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

var refAttr = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// references lists the URLs the page loads or links to, except the data:
// favicon.
func references(page string) []string {
	var out []string
	for _, m := range refAttr.FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "data:") {
			out = append(out, m[1])
		}
	}
	return out
}

func TestPageAndEveryReferencedAsset(t *testing.T) {
	srv := serve(t, "/graphql")
	page := do(t, "GET", srv.URL+"/", nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET / = %d", page.status)
	}
	if got := page.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("GET / Content-Type = %q", got)
	}
	if got := page.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("GET / X-Content-Type-Options = %q", got)
	}
	for _, want := range []string{"<title>taskpulse playground</title>", `id="tp-token"`, `content="/graphql"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".md":  "text/plain; charset=utf-8",
	}
	refs := references(page.body)
	seen := map[string]bool{}
	for _, ref := range refs {
		if !strings.HasPrefix(ref, strings.TrimPrefix(AssetsPrefix, "/")) {
			t.Errorf("page refers to %q, outside %s", ref, AssetsPrefix)
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(ref, strings.TrimPrefix(AssetsPrefix, "/")), "?")
		seen[name] = true
		res := do(t, "GET", srv.URL+"/"+ref, nil)
		if res.status != http.StatusOK {
			t.Errorf("GET %s = %d", ref, res.status)
			continue
		}
		ext := name[strings.LastIndex(name, "."):]
		if got := res.header.Get("Content-Type"); got != wantType[ext] {
			t.Errorf("GET %s Content-Type = %q, want %q", ref, got, wantType[ext])
		}
		want, err := os.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if res.body != string(want) {
			t.Errorf("GET %s: body differs from assets/%s", ref, name)
		}
		if got := res.header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s (versioned) Cache-Control = %q", ref, got)
		}
	}
	for _, name := range []string{
		"react.production.min.js", "react-dom.production.min.js", "graphql-ws.min.js",
		"graphiql.min.js", "graphiql.min.css", "playground.js", "playground.css", "LICENSES.md",
	} {
		if !seen[name] {
			t.Errorf("page does not refer to %s", name)
		}
	}
	// Scripts load in dependency order: GraphiQL's UMD needs React and
	// ReactDOM as globals, the bootstrap needs all of them.
	order := []string{"react.production.min.js", "react-dom.production.min.js", "graphql-ws.min.js", "graphiql.min.js", "playground.js"}
	last := -1
	for _, name := range order {
		i := strings.Index(page.body, `/`+name+`?`)
		if i < last {
			t.Errorf("%s is loaded before a script it needs", name)
		}
		last = i
	}
}

// The page must work offline: nothing it or its own script and stylesheet
// load may point off this server. The endpoint in the meta tag is the only
// URL, and here it is a path.
func TestNoExternalURLs(t *testing.T) {
	srv := serve(t, "/graphql")
	page := do(t, "GET", srv.URL+"/", nil).body
	docs := map[string]string{"page": page}
	for _, name := range []string{"playground.js", "playground.css"} {
		b, err := os.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = string(b)
	}
	for doc, text := range docs {
		for _, bad := range []string{"http://", "https://", "ws://", "wss://", "//"} {
			if i := strings.Index(text, bad); i >= 0 {
				t.Errorf("%s contains %q near %q", doc, bad, text[max(0, i-40):min(len(text), i+40)])
			}
		}
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	srv := serve(t, "/graphql")
	res := do(t, "GET", srv.URL+"/", nil)
	csp := res.header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"font-src":        "'self' data:",
		"img-src":         "'self' data:",
		"connect-src":     "'self' ws://" + host + " wss://" + host,
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("CSP %s = %q, want %q (CSP: %s)", name, got, want, csp)
		}
	}
	// Styles: 'self' plus this response's nonce, which the page hands to the
	// bootstrap; never 'unsafe-inline'.
	style := directives["style-src"]
	m := regexp.MustCompile(`^'self' 'nonce-([A-Z2-7]{20,})'$`).FindStringSubmatch(style)
	if m == nil {
		t.Fatalf("CSP style-src = %q", style)
	}
	if !strings.Contains(res.body, `<meta name="taskpulse-style-nonce" content="`+m[1]+`">`) {
		t.Errorf("page does not carry the CSP's style nonce %s", m[1])
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", csp)
	}
	again := do(t, "GET", srv.URL+"/", nil).header.Get("Content-Security-Policy")
	if again == csp {
		t.Errorf("two responses share a style nonce")
	}
}

func TestConnectSrc(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		host     string
		want     string
	}{
		{"path endpoint", "/graphql", "play.example:8080", "'self' ws://play.example:8080 wss://play.example:8080"},
		{"https endpoint elsewhere", "https://api.example/graphql", "play.example", "'self' https://api.example wss://api.example ws://play.example wss://play.example"},
		{"http endpoint elsewhere", "http://127.0.0.1:9000/graphql", "[::1]:8080", "'self' http://127.0.0.1:9000 ws://127.0.0.1:9000 ws://[::1]:8080 wss://[::1]:8080"},
		{"hostile host header", "/graphql", "x; script-src *", "'self'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Handler(tt.endpoint)
			req := httptest.NewRequest("GET", "/", nil)
			req.Host = tt.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "; connect-src "+tt.want+"; ") {
				t.Errorf("CSP = %s\nwant connect-src %s", csp, tt.want)
			}
			if strings.Count(csp, "script-src") != 1 {
				t.Errorf("CSP has extra directives: %s", csp)
			}
		})
	}
}

func TestEndpointIsEscaped(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(`/graphql"><script>alert(1)</script>`).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("endpoint injected markup:\n%s", body)
	}
	if !strings.Contains(body, `content="/graphql&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("endpoint not kept as escaped text:\n%s", body)
	}
}

func TestRequestsOutsideThePlayground(t *testing.T) {
	h := Handler("/graphql")
	tests := []struct {
		method, target string
		status         int
	}{
		{"GET", "/", http.StatusOK},
		{"HEAD", "/", http.StatusOK},
		{"POST", "/", http.StatusMethodNotAllowed},
		{"GET", "/index.html", http.StatusNotFound},
		{"GET", AssetsPrefix, http.StatusNotFound},
		{"GET", AssetsPrefix + "nope.js", http.StatusNotFound},
		{"GET", AssetsPrefix + "../playground.go", http.StatusNotFound},
		{"GET", AssetsPrefix + "playground.js", http.StatusOK},
		{"PUT", AssetsPrefix + "playground.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if tt.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestAssetRevalidation(t *testing.T) {
	srv := serve(t, "/graphql")
	url := srv.URL + AssetsPrefix + "playground.js"
	first := do(t, "GET", url, nil)
	if got := first.header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("unversioned asset Cache-Control = %q, want no-cache", got)
	}
	etag := first.header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(etag) {
		t.Fatalf("ETag = %q", etag)
	}
	if res := do(t, "GET", url, map[string]string{"If-None-Match": etag}); res.status != http.StatusNotModified || res.body != "" {
		t.Errorf("conditional GET = %d with %d bytes, want 304 and none", res.status, len(res.body))
	}
	if res := do(t, "GET", url+"?v=stale", nil); res.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("stale version cached as %q", res.header.Get("Cache-Control"))
	}
}

// The bootstrap and the page must agree on the element ids and meta names
// they share; a rename on one side would leave a blank or dead page.
func TestBootstrapMatchesPage(t *testing.T) {
	js, err := os.ReadFile("assets/playground.js")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Handler("/graphql").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, id := range regexp.MustCompile(`getElementById\('([^']+)'\)`).FindAllStringSubmatch(string(js), -1) {
		if !strings.Contains(page, `id="`+id[1]+`"`) {
			t.Errorf("playground.js looks up #%s, which the page lacks", id[1])
		}
	}
	for _, m := range regexp.MustCompile(`meta\[name="([^"]+)"\]`).FindAllStringSubmatch(string(js), -1) {
		if !strings.Contains(page, `<meta name="`+m[1]+`"`) {
			t.Errorf("playground.js reads meta %s, which the page lacks", m[1])
		}
	}
}
