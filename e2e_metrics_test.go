package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// series is one /metrics scrape: `name{label="value",…}` → value; a
// histogram gives name_count and name_sum.
type series map[string]float64

// scrape reads /metrics with a Prometheus parser.
func (e *env) scrape() series {
	e.t.Helper()
	res, err := http.Get(e.m.URL() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		e.t.Fatalf("/metrics content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		e.t.Fatalf("/metrics does not parse: %v", err)
	}
	out := series{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				k := strings.Replace(key, name, name+"_count", 1)
				out[k] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.GetHistogram().GetSampleSum()
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// scrapeUntil scrapes until ok holds, for up to 5s.
func (e *env) scrapeUntil(ok func(series) bool) series {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := e.scrape()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("/metrics did not move as expected: %v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get fails unless the scrape has key.
func (s series) get(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := s[key]
	if !ok {
		t.Fatalf("/metrics has no %s", key)
	}
	return v
}

// The metrics move as a user sees things happen: connect, subscribe,
// mutate, receive, disconnect with a code, over WebSocket and SSE alike;
// refused credentials are counted by reason; the process and Go figures
// and those tpload reads are there.
func TestMetricsMoveWithTheFlow(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "bob", "ops!")
	before := e.scrape()

	const ws, sse = `transport="graphql-transport-ws"`, `transport="sse"`
	alice := e.subscribe("alice", taskUpdatesQuery, nil)
	stream := e.openSSE(e.token("bob"), `subscription { systemUpdates { message } }`)
	e.createTask("alice", "metrics task", "", "")
	alice.nextTask()
	e.do("ops", `mutation { publishSystemUpdate(message: "maintenance at noon") }`, nil, nil)
	if _, ok := stream.next(); !ok {
		t.Fatal("the SSE stream ended before its event")
	}
	// The writer times a sampled write once it returns, which may be just
	// after the client has read it.
	// Alice's and bob's first connections are published as USER_ONLINE
	// (presence's relay, after the connection: wait for them).
	const online = `taskpulse_events_published_total{type="USER_ONLINE"}`
	during := e.scrapeUntil(func(s series) bool {
		return s["taskpulse_delivery_latency_seconds_count{"+ws+"}"] > before["taskpulse_delivery_latency_seconds_count{"+ws+"}"] &&
			s["taskpulse_delivery_latency_seconds_count{"+sse+"}"] > before["taskpulse_delivery_latency_seconds_count{"+sse+"}"] &&
			s[online]-before[online] == 2 && s["taskpulse_events_dispatched_total"]-before["taskpulse_events_dispatched_total"] >= 4
	})

	for key, want := range map[string]float64{
		"taskpulse_connections{" + ws + "}":                          1,
		"taskpulse_connections{" + sse + "}":                         1,
		`taskpulse_subscriptions{field="taskUpdates",` + ws + `}`:    1,
		`taskpulse_subscriptions{field="systemUpdates",` + sse + `}`: 1,
		"taskpulse_hub_subscriptions":                                2,
		`taskpulse_events_published_total{type="TASK_CREATED"}`:      1,
		`taskpulse_events_published_total{type="SYSTEM_UPDATE"}`:     1,
		"taskpulse_delivery_latency_seconds_count{" + ws + "}":       1, // the first batch of a connection is sampled
		"taskpulse_delivery_latency_seconds_count{" + sse + "}":      1,
		`taskpulse_frames_sent_total{transport="sse"}`:               1,
		online:                              2,
		"taskpulse_events_dispatched_total": 4, // with the two USER_ONLINE
		"taskpulse_deliveries_total":        2,
	} {
		if got := during.get(t, key) - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	if during.get(t, "taskpulse_ws_frames_sent_total") <= before["taskpulse_ws_frames_sent_total"] {
		t.Error("taskpulse_ws_frames_sent_total did not move")
	}
	if lat := during.get(t, "taskpulse_delivery_latency_seconds_sum{"+ws+"}"); lat <= 0 || lat > 5 {
		t.Errorf("commit → write latency %vs", lat)
	}

	// Ends: the client closes (1000); an admin disconnects bob (4403).
	_ = alice.c.Close()
	e.do("ops", `mutation { disconnectUser(userId: "bob") }`, nil, nil)
	for {
		if _, ok := stream.next(); !ok {
			break
		}
	}
	// Refusals: a malformed header over HTTP, an unknown token in
	// connection_init.
	e.postAuthorization("Bearer not-a-jwt", `{"query":"{ me { id } }"}`)
	e.refusedInit(map[string]any{"token": "not-a-jwt"})

	after := e.scrapeUntil(func(s series) bool {
		moved := func(key string) float64 { return s[key] - before[key] }
		return moved(`taskpulse_disconnects_total{code="4403",`+sse+`}`) == 1 &&
			moved(`taskpulse_disconnects_total{code="1000",`+ws+`}`) == 1 &&
			moved(`taskpulse_disconnects_total{code="4403",`+ws+`}`) == 1
	})
	for key, want := range map[string]float64{
		"taskpulse_connections{" + ws + "}":                                  0,
		"taskpulse_connections{" + sse + "}":                                 0,
		`taskpulse_subscriptions{field="taskUpdates",` + ws + `}`:            0,
		`taskpulse_subscriptions{field="systemUpdates",` + sse + `}`:         0,
		"taskpulse_hub_subscriptions":                                        0,
		`taskpulse_auth_failures_total{reason="malformed",transport="http"}`: 1,
		`taskpulse_auth_failures_total{reason="malformed",` + ws + `}`:       1,
	} {
		if got := after.get(t, key) - before[key]; got != want {
			t.Errorf("after: %s moved by %v, want %v", key, got, want)
		}
	}
	for _, key := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines",
		"go_memstats_heap_inuse_bytes", "taskpulse_graphql_query_cache_bytes", "taskpulse_ws_shapes", "taskpulse_hub_inbox"} {
		after.get(t, key)
	}
	if after["process_resident_memory_bytes"] <= 0 || after["process_cpu_seconds_total"] <= 0 {
		t.Errorf("process figures: %v", after)
	}
	for key := range after {
		if strings.Contains(key, "alice") || strings.Contains(key, "bob") {
			t.Errorf("a label carries a user id: %s", key)
		}
	}
}

// /metrics follows Prometheus's naming and typing conventions, and two
// servers in one process keep their own figures (no default registry).
func TestMetricsLintAndIsolation(t *testing.T) {
	a, b := start(t, nil), start(t, nil)
	a.users("alice")
	a.subscribe("alice", taskUpdatesQuery, nil)
	if got := b.scrape().get(t, `taskpulse_connections{transport="graphql-transport-ws"}`); got != 0 {
		t.Fatalf("another server's connection shows: %v", got)
	}
	res, err := http.Get(a.m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	problems, err := promlint.New(res.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "taskpulse_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// postAuthorization sends a request with the given Authorization header
// value ("" for none).
func (e *env) postAuthorization(authorization, body string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// refusedInit opens a socket whose connection_init must be refused (4403).
func (e *env) refusedInit(payload map[string]any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Init(ctx, payload); err == nil {
		e.t.Fatal("connection_init accepted")
	}
	if ce, err := c.WaitClose(ctx); err != nil || ce.Code != 4403 {
		e.t.Fatalf("close %v %v, want 4403", ce, err)
	}
}
