package gqlguard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/taskpulse/taskpulse/graph"
)

// defaults are the configuration's defaults (config.FromEnv).
var defaults = Options{
	MaxTokens:        15000,
	MaxErrors:        20,
	ValidationBudget: 50000,
	ComplexityLimit:  1000,
	MaxResponseBytes: 16 << 20,
	QueryCacheBytes:  32 << 20,
	Introspection:    true,
}

// server is taskpulse's schema behind gqlgen's POST transport with the
// bounds installed; its resolvers are nil, so only documents that never
// reach a resolver (refused ones, __typename, introspection) are answered.
func server(t *testing.T, o Options) (*handler.Server, *QueryCache) {
	t.Helper()
	srv := handler.New(graph.NewExecutableSchema(graph.Config{}))
	srv.AddTransport(transport.POST{})
	return srv, Install(srv, o)
}

type result struct {
	status int
	bytes  int
	cpu    time.Duration // the process's CPU time during the request
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

func (r result) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

func (r result) limit() string {
	if len(r.Errors) == 0 {
		return ""
	}
	l, _ := r.Errors[0].Extensions["limit"].(string)
	return l
}

// testSchema is taskpulse's schema.
func testSchema(t *testing.T) *ast.Schema {
	t.Helper()
	return graph.NewExecutableSchema(graph.Config{}).Schema()
}

// post runs one document through srv and measures it.
func post(t *testing.T, srv http.Handler, query string) result {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	before := cpuTime()
	srv.ServeHTTP(rec, req)
	r := result{status: rec.Code, bytes: rec.Body.Len(), cpu: cpuTime() - before}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("response %d is not JSON: %.300s", rec.Code, rec.Body)
	}
	return r
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
