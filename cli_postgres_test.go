package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/internal/pgtest"
)

// The CLI commands work on PostgreSQL as on SQLite: users added and tokens
// printed by separate processes are what a server on the same database
// accepts (the signing key generated once is kept in the database).
func TestCLIOnPostgres(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "DATABASE_URL="+pgtest.NewDatabase(t)) // the last value wins
	if out, errOut, code := p.run("user", "add", "alice", "--name", "Alice", "--email", "alice@example.com"); code != 0 || !strings.Contains(out, "created user alice") {
		t.Fatalf("user add: code %d, out %q, err %q", code, out, errOut)
	}
	if _, errOut, code := p.run("user", "add", "alice", "--name", "Again"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate user add: code %d, stderr %q", code, errOut)
	}
	if out, errOut, code := p.run("user", "update", "alice", "--name", "Alice L."); code != 0 {
		t.Fatalf("user update: code %d, out %q, err %q", code, out, errOut)
	}
	out, errOut, code := p.run("token", "alice", "--ttl", "10m")
	tok := strings.TrimSpace(out)
	if code != 0 || strings.Count(tok, ".") != 2 {
		t.Fatalf("token: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := p.run("token", "nobody"); code == 0 || !strings.Contains(errOut, "nobody") {
		t.Fatalf("token for an unknown user: code %d, stderr %q", code, errOut)
	}

	s := p.serve()
	req, _ := http.NewRequest("POST", s.url+"/graphql", strings.NewReader(`{"query":"{ me { id name email } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"me":{"id":"alice","name":"Alice L.","email":"alice@example.com"}`) {
		t.Fatalf("me with the CLI token: %d %s", res.StatusCode, body)
	}
	res, err = http.Get(s.url + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /readyz: %v %v", err, res)
	}
	res.Body.Close()
}
