package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// TestCLIUserUpdate: `taskpulse user update` changes a user on the
// database; a running server refuses a user disabled that way at its next
// request (it reads the user on every one) and closes their open sockets
// with 4403 (the change's event reaches it through the database's log),
// `token` refuses to issue for them, and enabling them again takes a new
// token.
func TestCLIUserUpdate(t *testing.T) {
	p := newProc(t)
	for _, args := range [][]string{
		{"user", "add", "bob", "--name", "Bob"},
		{"user", "add", "ops", "--name", "Ops", "--admin"},
	} {
		if _, errOut, code := p.run(args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
	}
	out, _, _ := p.run("token", "bob")
	tok := strings.TrimSpace(out)
	s := p.serve()
	me := func(token string) (int, string) {
		req, _ := http.NewRequest("POST", s.url+"/graphql", strings.NewReader(`{"query":"{ me { id name } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := me(tok); code != 200 || !strings.Contains(body, `"id":"bob"`) {
		t.Fatalf("before: %d %s", code, body)
	}

	// bob's open socket: the CLI's change reaches the running server
	// through the database's log (its feed polls it), which closes it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql", wsclient.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.Init(ctx, map[string]any{"token": tok}); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := p.run("user", "update", "bob", "--disabled", "--name", "Robert")
	if code != 0 || !strings.Contains(out, "updated user bob (Robert): admin=false disabled=true") {
		t.Fatalf("user update --disabled: %d %q %q", code, out, errOut)
	}
	disabled := time.Now()
	closed, err := ws.WaitClose(ctx)
	if err != nil || closed == nil || closed.Code != 4403 {
		t.Fatalf("bob's socket after the CLI disabled him: %+v, %v; want closed 4403", closed, err)
	}
	t.Logf("bob's socket closed %v after the CLI's change", time.Since(disabled))
	if code, body := me(tok); code != 401 || !strings.Contains(body, "UNAUTHENTICATED") || !strings.Contains(body, "disabled") {
		t.Fatalf("the running server after the CLI disabled bob: %d %s, want 401 UNAUTHENTICATED", code, body)
	}
	if out, errOut, code := p.run("token", "bob"); code != 1 || out != "" || !strings.Contains(errOut, "disabled") {
		t.Fatalf("token for a disabled user: %d %q %q", code, out, errOut)
	}

	if out, errOut, code := p.run("user", "update", "bob", "--disabled=false"); code != 0 || !strings.Contains(out, "disabled=false") {
		t.Fatalf("user update --disabled=false: %d %q %q", code, out, errOut)
	}
	if code, body := me(tok); code != 401 || !strings.Contains(body, "revoked") {
		t.Fatalf("the token issued before the disabling, once enabled: %d %s, want 401", code, body)
	}
	out, _, _ = p.run("token", "bob")
	if time.Now().Before(disabled.Truncate(time.Second).Add(time.Second)) {
		t.Fatal("token did not wait for the second after the revocation")
	}
	if code, body := me(strings.TrimSpace(out)); code != 200 || !strings.Contains(body, `"name":"Robert"`) {
		t.Fatalf("a new token once enabled: %d %s", code, body)
	}

	if out, errOut, code := p.run("user", "update", "ops", "--admin=false", "--email", "ops@example.com"); code != 0 || !strings.Contains(out, "admin=false disabled=false") {
		t.Fatalf("user update --admin=false: %d %q %q", code, out, errOut)
	}

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"user", "update"}, 2, "exactly one <id>"},
		{[]string{"user", "update", "bob"}, 2, "at least one of"},
		{[]string{"user", "update", "bob", "--admin=maybe"}, 2, "invalid boolean"},
		{[]string{"user", "update", "nobody", "--name", "N"}, 1, "nobody"},
		{[]string{"user", "update", "bob", "--name", " "}, 1, "name must not be empty"},
	} {
		if _, errOut, code := p.run(tc.args...); code != tc.code || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%v: code %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, errOut, tc.stderr)
		}
	}
}
