package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/audit"
)

// TestRateLimitIsOneLimiterForEveryTransport: a user's mutations and
// subscribes over HTTP, WebSocket and SSE draw on one allowance of
// RATE_LIMIT_PER_MIN; past it every transport answers RATE_LIMITED with
// extensions.retryAfter, queries still run, the socket stays up, and
// another user is unaffected.
func TestRateLimitIsOneLimiterForEveryTransport(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_PER_MIN": "6"}) // one every 10 s, a burst of 6
	e.users("alice", "bob", "ops!")
	alice := e.token("alice")
	ws := e.connect(alice)

	// 6 operations, two on each transport.
	mutation := map[string]any{"t": "x"}
	if _, r := e.httpOp(alice, limCreateTask, mutation); r != nil {
		t.Fatalf("HTTP mutation 1: %+v", r)
	}
	if _, r := e.httpOp(alice, limCreateTask, mutation); r != nil {
		t.Fatalf("HTTP mutation 2: %+v", r)
	}
	if r := wsOp(t, ws, limCreateTask, mutation); r != nil {
		t.Fatalf("WebSocket mutation: %+v", r)
	}
	sys, r0 := wsSubscribe(t, ws, "s1", `subscription { systemUpdates { message } }`)
	if r0 != nil {
		t.Fatalf("WebSocket subscribe: %+v", r0)
	}
	if _, _, ev := e.sseRequest(alice, limCreateTask, mutation, nil); sseRefusal(t, ev) != nil {
		t.Fatalf("SSE mutation: %v", ev)
	}
	sse := e.sseLive("alice", alice, `subscription { systemUpdates { message } }`) // the 6th

	// The 7th, on any transport, is refused; a retry is due in about one
	// interval (10 s; the first refusal may come a few ms into it).
	_, r := e.httpOp(alice, limCreateTask, mutation)
	wantRateLimited(t, "HTTP mutation", *r, 9, 10)
	wantRateLimited(t, "WebSocket mutation", *wsOp(t, ws, limCreateTask, mutation), 9, 10)
	_, ref := wsSubscribe(t, ws, "s2", `subscription { taskUpdates { type } }`)
	if ref == nil {
		t.Fatal("WebSocket subscribe past the limit went live")
	}
	wantRateLimited(t, "WebSocket subscribe", *ref, 9, 10)
	status, _, ev := e.sseRequest(alice, `subscription { taskUpdates { type } }`, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("SSE subscribe past the limit: %d %v", status, ev)
	}
	wantRateLimited(t, "SSE subscribe", *sseRefusal(t, ev), 9, 10)
	wantRateLimited(t, "SSE mutation", *sseRefusal(t, sseEvents(e, alice, limCreateTask, mutation)), 9, 10)

	// Queries are not counted, on any transport; the socket is up and its
	// subscription live, the SSE stream too.
	if _, r := e.httpOp(alice, `{ me { id } }`, nil); r != nil {
		t.Fatalf("HTTP query: %+v", r)
	}
	if r := wsOp(t, ws, `{ me { id } }`, nil); r != nil {
		t.Fatalf("WebSocket query: %+v", r)
	}
	if r := sseRefusal(t, sseEvents(e, alice, `{ me { id } }`, nil)); r != nil {
		t.Fatalf("SSE query: %+v", r)
	}
	e.do("bob", `mutation { createTask(input: {title: "bob's own allowance"}) { id } }`, nil, nil)
	e.do("ops", `mutation { publishSystemUpdate(message: "still connected") }`, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := sys.Next(ctx); err != nil || !strings.Contains(string(res.Data), "still connected") {
		t.Fatalf("WebSocket subscription after the refusals: %s %v", res.Data, err)
	}
	if d, ok := sse.next(); !ok || !strings.Contains(d, "still connected") {
		t.Fatalf("SSE stream after the refusals: %q %v", d, ok)
	}
	// Each refusal is audit-logged, with the operation.
	recs := e.auditRecords(audit.RateLimited)
	if len(recs) != 5 || recs[0].UserID != "alice" || recs[0].Operation != "createTask" || recs[0].Reason != "RATE_LIMIT_PER_MIN" {
		t.Fatalf("rate_limited records %+v, want 5 for alice, the first for createTask", recs)
	}
}

func sseEvents(e *env, token, query string, vars map[string]any) []string {
	_, _, ev := e.sseRequest(token, query, vars, nil)
	return ev
}

// TestRetryAfterIsHonest: a retry after retryAfter seconds is allowed.
func TestRetryAfterIsHonest(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_PER_MIN": "120"}) // one every 500 ms
	e.users("alice")
	alice := e.token("alice")
	var r *limRefusal
	// The bucket refills one every 500 ms while the loop runs, so a slow
	// machine gets a few more than the burst before the first refusal.
	for i := 0; r == nil; i++ {
		if i > 240 {
			t.Fatal("never refused past a burst of 120")
		}
		_, r = e.httpOp(alice, limCreateTask, map[string]any{"t": "x"})
	}
	wantRateLimited(t, "past the burst", *r, 1, 1)
	time.Sleep(time.Duration(r.retryAfter) * time.Second)
	if _, r := e.httpOp(alice, limCreateTask, map[string]any{"t": "x"}); r != nil {
		t.Fatalf("refused after waiting retryAfter: %+v", r)
	}
}

// TestEachMutationOfAnOperationCounts: an operation with several mutation
// fields takes one from the allowance for each, all or nothing; one with
// more than the whole burst is refused as bad input.
func TestEachMutationOfAnOperationCounts(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_PER_MIN": "10"})
	e.users("alice")
	alice := e.token("alice")
	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("mutation {")
		for i := range n {
			fmt.Fprintf(&b, ` t%d: createTask(input: {title: "t%d"}) { id }`, i, i)
		}
		return b.String() + " }"
	}
	if _, r := e.httpOp(alice, aliases(3), nil); r != nil {
		t.Fatalf("3 mutations of 10: %+v", r)
	}
	// 7 left: 8 are refused whole, nothing of it runs.
	_, r := e.httpOp(alice, aliases(8), nil)
	wantRateLimited(t, "8 mutations with 7 left", *r, 6, 6) // one more token: 6 s at 10 a minute
	_, r = e.httpOp(alice, aliases(11), nil)
	if r == nil || r.code != "BAD_USER_INPUT" || !strings.Contains(r.message, "at most 10") {
		t.Fatalf("11 mutations with a burst of 10: %+v, want BAD_USER_INPUT", r)
	}
	var out struct{ Tasks []struct{ ID string } }
	e.do("alice", `{ tasks { id } }`, nil, &out)
	if len(out.Tasks) != 3 {
		t.Fatalf("%d tasks, want the 3 allowed (a refused operation runs nothing)", len(out.Tasks))
	}
	// A fragment's mutations count too.
	_, r = e.httpOp(alice, `mutation { ...M } fragment M on Mutation { a: createTask(input: {title: "a"}) { id } b: createTask(input: {title: "b"}) { id } c: createTask(input: {title: "c"}) { id } d: createTask(input: {title: "d"}) { id } e: createTask(input: {title: "e"}) { id } f: createTask(input: {title: "f"}) { id } g: createTask(input: {title: "g"}) { id } h: createTask(input: {title: "h"}) { id } }`, nil)
	wantRateLimited(t, "8 mutations in a fragment with 7 left", *r, 6, 6)
}

// TestBlockAfterRepeatedRefusals: a user who keeps being refused is
// blocked: their sockets (WebSocket and SSE) closed 1008, everything they
// ask refused 429 with Retry-After for the cooldown, the block and its end
// audit-logged; other users, even from the same address, are untouched.
func TestBlockAfterRepeatedRefusals(t *testing.T) {
	e := start(t, map[string]string{
		"RATE_LIMIT_PER_MIN": "2", "ABUSE_THRESHOLD": "3", "ABUSE_WINDOW": "1m", "ABUSE_COOLDOWN": "2s",
	})
	e.users("alice", "bob")
	alice, bob := e.token("alice"), e.token("bob")
	ws := e.connect(alice)
	sse := e.sseLive("alice", alice, `subscription { systemUpdates { message } }`) // 1 of 2
	bobWS := e.connect(bob)

	if r := wsOp(t, ws, limCreateTask, map[string]any{"t": "x"}); r != nil { // 2 of 2
		t.Fatalf("second operation: %+v", r)
	}
	for i := 1; i <= 2; i++ { // refusals 1 and 2: not yet blocked
		_, r := e.httpOp(alice, limCreateTask, map[string]any{"t": "x"})
		wantRateLimited(t, fmt.Sprintf("refusal %d", i), *r, 1, 30)
		if len(e.auditRecords(audit.Block)) != 0 {
			t.Fatalf("blocked after %d refusals; threshold 3", i)
		}
	}
	blockedAt := time.Now()
	_, r := e.httpOp(alice, limCreateTask, map[string]any{"t": "x"}) // the 3rd: blocked
	wantRateLimited(t, "refusal 3", *r, 1, 30)
	ce := closedWith(t, "alice's WebSocket", ws, 1008)
	if !strings.Contains(ce.Reason, "Blocked") {
		t.Fatalf("close reason %q", ce.Reason)
	}
	if d, ok := sse.next(); ok {
		t.Fatalf("alice's SSE stream went on after the block: %q", d)
	}

	// During the cooldown: HTTP, a new upgrade with the token in the
	// header, and SSE are 429; a token in connection_init closes 1008.
	e.postRefused("alice's HTTP request", bearer(alice), 1, 2)
	e.upgradeRefused("alice's upgrade", bearer(alice), 1, 2)
	status, h, ev := e.sseRequest(alice, `{ me { id } }`, nil, nil)
	want429(t, "alice's SSE request", status, h, []byte(ev[0]), 1, 2)
	c, err := e.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Init(t.Context(), map[string]any{"token": alice})
	closedWith(t, "alice's new socket", c, 1008)

	// Bob, on the same address, is not blocked.
	if r := wsOp(t, bobWS, limCreateTask, map[string]any{"t": "bob"}); r != nil {
		t.Fatalf("bob: %+v", r)
	}
	blocks := e.auditRecords(audit.Block)
	if len(blocks) != 1 || blocks[0].UserID != "alice" || blocks[0].IP != "" || blocks[0].Count != 2 ||
		blocks[0].Reason != "RATE_LIMIT_PER_MIN" || blocks[0].Until.Sub(blockedAt) < 1500*time.Millisecond || blocks[0].Until.Sub(blockedAt) > 3*time.Second {
		t.Fatalf("block records %+v, want one for alice, 2 connections closed, until ≈ +2 s", blocks)
	}

	// After the cooldown: alice is served again (queries; her mutations
	// still wait for the rate limit's refill), and the end is audit-logged.
	waitFor(t, "the unblock record", func() bool { return len(e.auditRecords(audit.Unblock)) == 1 })
	if un := e.auditRecords(audit.Unblock)[0]; un.UserID != "alice" || un.Time.Before(blocks[0].Until.Add(-10*time.Millisecond)) {
		t.Fatalf("unblock record %+v, want alice's, at the block's end %v", un, blocks[0].Until)
	}
	if status, r := e.httpOp(alice, `{ me { id } }`, nil); status != 200 || r != nil {
		t.Fatalf("after the cooldown: %d %+v", status, r)
	}
	e.connect(alice)
}

// TestBlockAnAddressThatKeepsFailingAuthentication: credentials refused
// over HTTP and in connection_init count against the client's address;
// at the threshold the address is blocked (its sockets closed 1008, every
// request 429, whoever's token it carries) for the cooldown.
func TestBlockAnAddressThatKeepsFailingAuthentication(t *testing.T) {
	e := start(t, map[string]string{"ABUSE_THRESHOLD": "3", "ABUSE_WINDOW": "1m", "ABUSE_COOLDOWN": "1s"})
	e.users("alice")
	alice := e.token("alice")
	ws := e.connect(alice)

	// Requests without a token are not counted: they cost nothing.
	for range 5 {
		if status, _ := e.post("", `{ me { id } }`, nil); status != 401 {
			t.Fatalf("no token: %d", status)
		}
	}
	// Two bad tokens over HTTP, one in connection_init: the third blocks.
	for range 2 {
		if status, _ := e.postWith("not-a-token", `{ me { id } }`, nil); status != 401 {
			t.Fatalf("bad token: %d, want 401", status)
		}
	}
	bad, err := e.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = bad.Init(t.Context(), map[string]any{"token": "not-a-token"})
	closedWith(t, "the bad token's socket", bad, 4403)
	closedWith(t, "alice's socket from the blocked address", ws, 1008)

	e.postRefused("a valid token from the blocked address", bearer(alice), 1, 1)
	e.postRefused("a request without a token from the blocked address", nil, 1, 1)
	e.upgradeRefused("an upgrade from the blocked address", nil, 1, 1)

	blocks := e.auditRecords(audit.Block)
	if len(blocks) != 1 || blocks[0].IP != "127.0.0.1" || blocks[0].UserID != "" || blocks[0].Reason != "AUTH_FAILURE" || blocks[0].Count != 1 {
		t.Fatalf("block records %+v, want one for 127.0.0.1 (AUTH_FAILURE), 1 connection closed", blocks)
	}
	waitFor(t, "the unblock record", func() bool { return len(e.auditRecords(audit.Unblock)) == 1 })
	if un := e.auditRecords(audit.Unblock)[0]; un.IP != "127.0.0.1" {
		t.Fatalf("unblock record %+v", un)
	}
	e.do("alice", `{ me { id } }`, nil, nil)
}
