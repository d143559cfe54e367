package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestRightsAfterTheBody: a request's token is verified from its headers,
// before its body is read (nothing is parsed for an unknown sender), and
// the body may take HTTP_BODY_TIMEOUT to arrive. The operation must run
// with the rights the user has when it runs, not when the headers came.
// Before: ops, demoted while its request's body was on the way, ran an
// admin mutation with that body and made itself admin again; bob,
// disabled meanwhile, still ran his mutation.
func TestRightsAfterTheBody(t *testing.T) {
	e := start(t, nil)
	e.users("root!", "ops!", "bob")
	tests := []struct {
		name, user, query string
		change            func()
		code              string
	}{
		{"demoted: an admin mutation", "ops", `mutation { updateUser(id: "ops", input: {admin: true}) { id } }`,
			func() { e.updateUser("root", "ops", map[string]any{"admin": false}) }, "FORBIDDEN"},
		{"disabled: any operation", "bob", `mutation { createProject(input: {name: "after"}) { id } }`,
			func() { e.updateUser("root", "bob", map[string]any{"disabled": true}) }, "UNAUTHENTICATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", pr)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.token(tt.user))
			type result struct {
				status int
				body   gqlResponse
				err    error
			}
			done := make(chan result, 1)
			go func() {
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- result{err: err}
					return
				}
				defer res.Body.Close()
				var r gqlResponse
				err = json.NewDecoder(res.Body).Decode(&r)
				done <- result{status: res.StatusCode, body: r, err: err}
			}()
			body, _ := json.Marshal(map[string]any{"query": tt.query})
			half := len(body) / 2
			if _, err := pw.Write(body[:half]); err != nil { // the headers and half the body are in: the token was verified
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			tt.change()
			_, _ = pw.Write(body[half:])
			_ = pw.Close()
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if len(r.body.Errors) == 0 || r.body.Errors[0].code() != tt.code {
				t.Fatalf("status %d, %+v; want %s", r.status, r.body, tt.code)
			}
		})
	}
	// ops did not make itself admin again.
	e.fails("ops", `mutation { updateUser(id: "bob", input: {name: "B"}) { id } }`, nil, "FORBIDDEN")
}
