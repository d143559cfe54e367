package gqlguard

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestResponseBytes: data over MaxBytes becomes one error and data null;
// the estimate made as fields resolve stays close to the real size.
func TestResponseBytes(t *testing.T) {
	query := readFile(t, "testdata/introspection.graphql")
	full := post(t, mustServer(t, defaults), query)
	if full.status != http.StatusOK || len(full.Errors) > 0 {
		t.Fatalf("introspection: %d %v", full.status, full.Errors)
	}
	size := len(full.Data)
	tests := []struct {
		name     string
		maxBytes int64
		refused  bool
	}{
		{"a bound 25% above the data", int64(size) * 5 / 4, false},
		{"a bound 20% below the data", int64(size) * 4 / 5, true},
		{"a tenth of the data", int64(size) / 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaults
			o.MaxResponseBytes = tt.maxBytes
			r := post(t, mustServer(t, o), query)
			if !tt.refused {
				if len(r.Errors) > 0 || len(r.Data) != size {
					t.Fatalf("refused (%v) or changed: %d bytes of data, want %d", r.Errors, len(r.Data), size)
				}
				return
			}
			if len(r.Errors) != 1 || r.limit() != VarMaxResponseBytes || r.codes()[0] != "BAD_USER_INPUT" || string(r.Data) != "null" {
				t.Fatalf("want data null and one BAD_USER_INPUT error naming %s, got %s %v", VarMaxResponseBytes, r.Data, r.Errors)
			}
			if r.bytes > 300 {
				t.Fatalf("the refusal is %d bytes", r.bytes)
			}
		})
	}
}

// TestResponseErrors: a response carries at most MaxErrors errors and one
// saying more were dropped; each message at most maxMessage bytes.
func TestResponseErrors(t *testing.T) {
	o := defaults
	o.MaxErrors = 5
	srv := mustServer(t, o)

	r := post(t, srv, "{"+strings.Repeat("nope ", 50)+"}")
	if len(r.Errors) != 6 {
		t.Fatalf("%d errors, want 5 and a note", len(r.Errors))
	}
	if last := r.Errors[5]; last.Extensions["limit"] != VarMaxErrors || !strings.Contains(last.Message, "first 5") {
		t.Fatalf("last error %+v, want the note naming %s", last, VarMaxErrors)
	}

	long := strings.Repeat("é", 3000) // two bytes each: the cut must not split one
	r = post(t, srv, `{ notifications(limit: "`+long+`") { id } }`)
	if len(r.Errors) != 1 {
		t.Fatalf("errors %v", r.Errors)
	}
	m := r.Errors[0].Message
	if len(m) > maxMessage+len("…") || !utf8.ValidString(m) || !strings.HasSuffix(m, "…") {
		t.Fatalf("message of %d bytes (valid UTF-8: %v): %.80s…", len(m), utf8.ValidString(m), m)
	}
}

func mustServer(t *testing.T, o Options) http.Handler {
	srv, _ := server(t, o)
	return srv
}
