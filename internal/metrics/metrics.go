// Package metrics owns the /metrics endpoint: a small registry of values
// read at scrape time and written in the Prometheus text format (0.0.4).
// Values are read from the components' own counters, so the hot paths pay
// nothing for being measured.
package metrics

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

type kind string

const (
	counter kind = "counter"
	gauge   kind = "gauge"
)

type metric struct {
	name, help string
	kind       kind
	read       func() float64
}

// Registry holds the metrics served by ServeHTTP.
type Registry struct {
	mu      sync.Mutex
	metrics map[string]metric
}

// New returns an empty registry.
func New() *Registry { return &Registry{metrics: map[string]metric{}} }

// Counter registers a monotonically increasing value.
func (r *Registry) Counter(name, help string, read func() float64) { r.add(name, help, counter, read) }

// Gauge registers a value that goes up and down.
func (r *Registry) Gauge(name, help string, read func() float64) { r.add(name, help, gauge, read) }

func (r *Registry) add(name, help string, k kind, read func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.metrics[name]; dup {
		panic("metrics: duplicate metric " + name)
	}
	r.metrics[name] = metric{name: name, help: help, kind: k, read: read}
}

// ServeHTTP writes every metric, sorted by name.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	ms := make([]metric, 0, len(r.metrics))
	for _, m := range r.metrics {
		ms = append(ms, m)
	}
	r.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", m.name, escapeHelp(m.help), m.name, m.kind,
			m.name, strconv.FormatFloat(m.read(), 'g', -1, 64))
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
