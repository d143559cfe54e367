package gqlguard

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// randomDocument is a random document over taskpulse's schema, built to
// collide: few response names, few argument values, fragments (each may
// spread only those defined before it: no cycles) and inline fragments
// everywhere.
func randomDocument(rng *rand.Rand, schema *ast.Schema) string {
	pick := func(n int) int { return rng.IntN(n) }
	objects := []string{"Query", "User", "Task", "Project", "Team"}
	var set func(typ string, depth int, frags map[string][]string) string
	field := func(typ string, depth int, frags map[string][]string) string {
		fields := schema.Types[typ].Fields
		f := fields[pick(len(fields))]
		if strings.HasPrefix(f.Name, "__") {
			return "__typename"
		}
		var b strings.Builder
		if pick(3) == 0 {
			b.WriteString([]string{"a", "b", "id"}[pick(3)] + ": ")
		}
		b.WriteString(f.Name)
		var args []string
		for _, a := range f.Arguments {
			if a.Type.NonNull || pick(2) == 0 {
				v := []string{`"1"`, `"2"`, "null"}[pick(3)]
				if a.Type.Name() != "ID" && a.Type.Name() != "String" {
					continue
				}
				if a.Type.NonNull && v == "null" {
					v = `"1"`
				}
				args = append(args, a.Name+": "+v)
			}
		}
		if len(args) > 0 {
			b.WriteString("(" + strings.Join(args, ", ") + ")")
		}
		if t := schema.Types[f.Type.Name()]; t.Kind == ast.Object {
			if depth <= 0 {
				return ""
			}
			b.WriteString(" " + set(t.Name, depth-1, frags))
		}
		return b.String()
	}
	set = func(typ string, depth int, frags map[string][]string) string {
		var parts []string
		for range 1 + pick(4) {
			switch r := pick(10); {
			case r < 6:
				if f := field(typ, depth, frags); f != "" {
					parts = append(parts, f)
				}
			case r < 8 && depth > 0:
				parts = append(parts, "... on "+typ+" "+set(typ, depth-1, frags))
			default:
				if names := frags[typ]; len(names) > 0 {
					parts = append(parts, "..."+names[pick(len(names))])
				}
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "__typename")
		}
		return "{ " + strings.Join(parts, " ") + " }"
	}
	// Fragments may spread only those defined before them: no cycles.
	frags := map[string][]string{}
	var defs strings.Builder
	for j := range pick(5) {
		typ := objects[pick(len(objects))]
		name := fmt.Sprintf("F%d", j)
		fmt.Fprintf(&defs, "fragment %s on %s %s\n", name, typ, set(typ, 2, frags))
		frags[typ] = append(frags[typ], name)
	}
	return set("Query", 3, frags) + "\n" + defs.String()
}
