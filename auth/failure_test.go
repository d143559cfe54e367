package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
)

// Every 401 Middleware and Authenticator.Required answer is reported to
// Options.OnFailure with the reason the client is told — never the token —
// and nothing else is.
func TestOnFailureSeesEveryRefusal(t *testing.T) {
	var got []string
	a := newAuth(t, func(o *Options) {
		o.Now = time.Now
		o.OnFailure = func(r *http.Request, e *errs.Error) {
			got = append(got, string(e.Code)+": "+e.Message)
		}
	})
	good := mustIssue(t, a, "alice")
	h := a.Middleware(a.Required(func(*http.Request) bool { return false }, whoami))
	tests := []struct {
		header string
		want   string // "" for no report
	}{
		{"Bearer " + good, ""},
		{"", "UNAUTHENTICATED: missing token: send Authorization: Bearer <jwt>"},
		{"Bearer not-a-jwt-SECRETMARK", "UNAUTHENTICATED: malformed token"},
		{"Basic SECRETMARK", `UNAUTHENTICATED: Authorization header must be "Bearer <token>"`},
		{"Bearer " + mustIssue(t, a, "mallory"), "UNAUTHENTICATED: token user does not exist"},
	}
	for _, tt := range tests {
		got = nil
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{me{id}}"}`))
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("%q: reported %v", tt.header, got)
		case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
			t.Errorf("%q: reported %v, want %q", tt.header, got, tt.want)
		}
		if strings.Contains(strings.Join(got, ""), "SECRETMARK") {
			t.Errorf("a report quotes the credential: %v", got)
		}
	}
}
