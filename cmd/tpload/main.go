// Command tpload measures a running taskpulse server from the outside, the
// way clients see it, over loopback:
//
//	tpload latency -url http://127.0.0.1:8080 -token <alice> -n 1000
//	    one subscriber; n sequential createTask mutations over HTTP; for each,
//	    the time from the mutation's response to the subscriber's event
//	    (and from the request's start), as p50/p90/p99/max.
//
//	tpload fanout -url … -token <any user> -admin-token <admin> -conns 10000 -events 20
//	    conns sockets subscribed to systemUpdates; each published event's
//	    delivery latency to every socket (publish start → receipt), the time
//	    to the last receipt, and — from /metrics — server CPU per delivery
//	    and resident memory per connection.
//
//	tpload floor -conns 10000 -writes 60
//	    the physical floor of that fan-out: the same frame written to conns
//	    loopback sockets with one write(2) each per round, by a process that
//	    does nothing else (the sockets are read by a child tpload); CPU per
//	    write from getrusage, and wall time per round.
//
// Every loop is bounded in count and time; only loopback targets make sense.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tpload latency|fanout|floor [flags]  (tpload <mode> -h for flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "latency":
		err = latency(os.Args[2:])
	case "fanout":
		err = fanout(os.Args[2:])
	case "floor":
		err = floor(os.Args[2:])
	case "floor-reader": // the child process of floor
		err = floorReader(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tpload:", err)
		os.Exit(1)
	}
}

// client is one graphql-transport-ws connection with one subscription.
type client struct {
	conn *websocket.Conn
}

func wsURL(base string) string {
	return "ws" + strings.TrimPrefix(strings.TrimSuffix(base, "/"), "http") + "/graphql"
}

func dial(ctx context.Context, base, token, query string) (*client, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second,
		ReadBufferSize: 1024, WriteBufferSize: 1024}
	c, _, err := d.DialContext(ctx, wsURL(base), nil)
	if err != nil {
		return nil, err
	}
	cl := &client{conn: c}
	if err := c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"token": token}}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack struct{ Type string }
	if err := c.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		c.Close()
		return nil, fmt.Errorf("connection_init: %v %q", err, ack.Type)
	}
	if err := c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query}}); err != nil {
		c.Close()
		return nil, err
	}
	// The server registers a subscription before it reads the next frame,
	// so the pong proves events published from now on reach this socket.
	if err := c.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		c.Close()
		return nil, err
	}
	for {
		var m struct {
			Type    string
			Payload json.RawMessage
		}
		if err := c.ReadJSON(&m); err != nil {
			c.Close()
			return nil, fmt.Errorf("waiting for pong after subscribe: %w", err)
		}
		switch m.Type {
		case "pong":
			_ = c.SetReadDeadline(time.Time{})
			return cl, nil
		case "error", "complete":
			c.Close()
			return nil, fmt.Errorf("subscribe refused: %s %s", m.Type, m.Payload)
		}
	}
}

// requestTimeout bounds every HTTP request the tool makes.
const requestTimeout = 30 * time.Second

// post runs a GraphQL operation over HTTP and returns its data.
func post(base, token, query string, vars map[string]any) (json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", strings.TrimSuffix(base, "/")+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %w", res.StatusCode, err)
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("graphql: %s", r.Errors[0].Message)
	}
	return r.Data, nil
}

// latency: mutation response → event, one subscriber.
func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	token := fs.String("token", "", "JWT of the user who mutates and subscribes")
	n := fs.Int("n", 1000, "number of mutations")
	warm := fs.Int("warmup", 50, "mutations before measuring")
	_ = fs.Parse(args)
	if *token == "" {
		return errors.New("-token is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := dial(ctx, *base, *token, `subscription { taskUpdates { type cursor task { id } } }`)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	fromResp := make([]time.Duration, 0, *n)
	fromReq := make([]time.Duration, 0, *n)
	for i := 0; i < *n+*warm; i++ {
		t0 := time.Now()
		data, err := post(*base, *token, `mutation($t: String!) { createTask(input: {title: $t}) { id } }`, map[string]any{"t": "load " + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		t1 := time.Now()
		var d struct{ CreateTask struct{ ID string } }
		_ = json.Unmarshal(data, &d)
		for {
			_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := c.conn.ReadMessage()
			if err != nil {
				return fmt.Errorf("waiting for the event of %s: %w", d.CreateTask.ID, err)
			}
			if bytes.Contains(msg, []byte(d.CreateTask.ID)) {
				break
			}
		}
		t2 := time.Now()
		if i >= *warm {
			fromResp = append(fromResp, t2.Sub(t1))
			fromReq = append(fromReq, t2.Sub(t0))
		}
	}
	fmt.Printf("latency over %d mutations (after %d warm-up), loopback:\n", *n, *warm)
	fmt.Printf("  mutation response → event: %s\n", summary(fromResp))
	fmt.Printf("  mutation request  → event: %s\n", summary(fromReq))
	return nil
}

// fanout: one event to many sockets.
func fanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	token := fs.String("token", "", "JWT of the subscribing user")
	admin := fs.String("admin-token", "", "JWT of an admin (publishes system updates)")
	conns := fs.Int("conns", 1000, "subscribed sockets")
	events := fs.Int("events", 20, "events to publish")
	gap := fs.Duration("gap", 200*time.Millisecond, "pause between events")
	_ = fs.Parse(args)
	if *token == "" || *admin == "" {
		return errors.New("-token and -admin-token are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	before, err := scrape(*base)
	if err != nil {
		return err
	}
	clients := make([]*client, *conns)
	dialStart := time.Now()
	var dialErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(ctx, *base, *token, `subscription { systemUpdates { type cursor message } }`)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && dialErr == nil {
				dialErr = fmt.Errorf("socket %d: %w", i, err)
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	if dialErr != nil {
		return dialErr
	}
	dialed := time.Since(dialStart)
	time.Sleep(500 * time.Millisecond)
	connected, err := scrape(*base)
	if err != nil {
		return err
	}

	// Receivers record the latency of every receipt: publish start (carried
	// in the message) → now.
	var lat = make([][]time.Duration, *events)
	var lastAt = make([]int64, *events)
	var got atomic.Int64
	var rmu sync.Mutex
	var rwg sync.WaitGroup
	for _, c := range clients {
		rwg.Add(1)
		go func(c *client) {
			defer rwg.Done()
			// Count only this run's system updates; anything else (another
			// publisher's message, a protocol message) is skipped. A silent
			// socket ends the loop after its read deadline.
			for k := 0; k < *events; {
				_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, msg, err := c.conn.ReadMessage()
				now := time.Now()
				if err != nil {
					return
				}
				var m struct {
					Type    string
					Payload struct {
						Data struct{ SystemUpdates struct{ Message string } }
					}
				}
				if json.Unmarshal(msg, &m) != nil || m.Type != "next" {
					continue
				}
				idxS, t0S, ok := strings.Cut(m.Payload.Data.SystemUpdates.Message, " ")
				idx, err1 := strconv.Atoi(idxS)
				t0, err2 := strconv.ParseInt(t0S, 10, 64)
				if !ok || err1 != nil || err2 != nil || idx < 0 || idx >= *events {
					continue
				}
				k++
				rmu.Lock()
				lat[idx] = append(lat[idx], now.Sub(time.Unix(0, t0)))
				if now.UnixNano() > lastAt[idx] {
					lastAt[idx] = now.UnixNano()
				}
				rmu.Unlock()
				got.Add(1)
			}
		}(c)
	}
	// A progress line: profiles of the server are best taken from here on.
	fmt.Printf("connected %d sockets in %v; publishing %d events, %v apart\n", *conns, dialed.Round(time.Millisecond), *events, *gap)
	starts := make([]int64, *events)
	for k := 0; k < *events; k++ {
		starts[k] = time.Now().UnixNano()
		if _, err := post(*base, *admin, `mutation($m: String!) { publishSystemUpdate(message: $m) }`,
			map[string]any{"m": fmt.Sprintf("%d %d", k, starts[k])}); err != nil {
			return err
		}
		time.Sleep(*gap)
	}
	rwg.Wait()
	after, err := scrape(*base)
	if err != nil {
		return err
	}
	var all, last []time.Duration
	for k := range lat {
		all = append(all, lat[k]...)
		if lastAt[k] > 0 {
			last = append(last, time.Duration(lastAt[k]-starts[k]))
		}
	}
	deliveries := after["taskpulse_deliveries_total"] - connected["taskpulse_deliveries_total"]
	cpu := after["process_cpu_seconds_total"] - connected["process_cpu_seconds_total"]
	fmt.Printf("fan-out: %d sockets × %d events = %d receipts expected, %d received\n", *conns, *events, *conns**events, got.Load())
	fmt.Printf("  per receipt (publish start → socket read): %s\n", summary(all))
	fmt.Printf("  per event, publish start → last socket:    %s\n", summary(last))
	if deliveries > 0 {
		fmt.Printf("  server CPU per delivery: %.2f µs (%.3f s CPU / %.0f deliveries, includes the publishes)\n", cpu/deliveries*1e6, cpu, deliveries)
	}
	if *conns > 0 {
		fmt.Printf("  server resident memory per connection: %.1f KB (RSS %0.f MB → %0.f MB)\n",
			(connected["process_resident_memory_bytes"]-before["process_resident_memory_bytes"])/float64(*conns)/1024,
			before["process_resident_memory_bytes"]/1e6, connected["process_resident_memory_bytes"]/1e6)
	}
	return nil
}

// scrape reads /metrics into name → value.
func scrape(base string) (map[string]float64, error) {
	res, err := http.Get(strings.TrimSuffix(base, "/") + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out, nil
}

func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }
	r := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", len(ds), r(q(.5)), r(q(.9)), r(q(.99)), r(ds[len(ds)-1]))
}
