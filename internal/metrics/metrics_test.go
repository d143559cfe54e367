package metrics

import (
	"net/http/httptest"
	"testing"
)

func TestServeHTTPWritesSortedTextFormat(t *testing.T) {
	r := New()
	n := 0.0
	r.Gauge("b_gauge", "a gauge\nwith a newline", func() float64 { return n })
	r.Counter("a_total", `counts \ things`, func() float64 { return 3 })
	n = 1.5 // read at scrape time, not at registration

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))

	want := "# HELP a_total counts \\\\ things\n# TYPE a_total counter\na_total 3\n" +
		"# HELP b_gauge a gauge\\nwith a newline\n# TYPE b_gauge gauge\nb_gauge 1.5\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("body:\n%s\nwant:\n%s", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
}

func TestDuplicateNamePanics(t *testing.T) {
	r := New()
	r.Counter("x", "", func() float64 { return 0 })
	defer func() {
		if recover() == nil {
			t.Fatal("registering a metric twice must panic: it is a wiring bug")
		}
	}()
	r.Gauge("x", "", func() float64 { return 0 })
}
