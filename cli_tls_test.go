package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCLIServeDemoOverTLS: with TLS_CERT_FILE and TLS_KEY_FILE the first
// stdout line and the demo's playground link are https://, and the link
// opens.
func TestCLIServeDemoOverTLS(t *testing.T) {
	f := newCertFiles(t)
	f.renew()
	p := newProc(t)
	p.env = append(p.env, "TLS_CERT_FILE="+f.cert, "TLS_KEY_FILE="+f.key)
	s := p.serve("--demo")
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("listening on %s, want https://127.0.0.1:<port>", s.url)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool()}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	re := regexp.MustCompile(`(?m)^Playground \(as alice\): (https://\S+)/#token=\S+$`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			if m[1] != s.url {
				t.Fatalf("playground link on %s, server on %s", m[1], s.url)
			}
			res, err := client.Get(m[1] + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(body), "<html") {
				t.Fatalf("playground over HTTPS: %d %.200s", res.StatusCode, body)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no https playground link on stdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
}

// TestCLIRefusesTLSConfig: one variable without the other, or files that
// do not load, stop the start (exit 2) with a message naming the variable.
func TestCLIRefusesTLSConfig(t *testing.T) {
	f := newCertFiles(t)
	f.renew()
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		env    []string
		stderr string
	}{
		{"cert without key", []string{"TLS_CERT_FILE=" + f.cert}, `TLS_KEY_FILE="": must be set too when TLS_CERT_FILE is`},
		{"key without cert", []string{"TLS_KEY_FILE=" + f.key}, `TLS_CERT_FILE="": must be set too when TLS_KEY_FILE is`},
		{"missing cert", []string{"TLS_CERT_FILE=/nonexistent/cert.pem", "TLS_KEY_FILE=" + f.key}, "TLS_CERT_FILE=\"/nonexistent/cert.pem\": cannot read the file"},
		{"cert not PEM", []string{"TLS_CERT_FILE=" + garbage, "TLS_KEY_FILE=" + f.key}, "no PEM certificate"},
		{"key not PEM", []string{"TLS_CERT_FILE=" + f.cert, "TLS_KEY_FILE=" + garbage}, "TLS_KEY_FILE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProc(t)
			p.env = append(p.env, c.env...)
			out, errOut, code := p.run("serve")
			if code != 2 || !strings.Contains(errOut, c.stderr) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, c.stderr)
			}
		})
	}
}
