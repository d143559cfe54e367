package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/testcert"
)

// writeTLSPair writes a CA-signed certificate and its key into dir under
// the given names and returns their paths.
func writeTLSPair(t *testing.T, dir, certName, keyName string) (string, string) {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1", "localhost"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	if err := leaf.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestTLSFilesAccepted(t *testing.T) {
	cert, key := writeTLSPair(t, t.TempDir(), "cert.pem", "key.pem")
	got, err := FromEnv(env(map[string]string{"TLS_CERT_FILE": cert, "TLS_KEY_FILE": key}))
	if err != nil {
		t.Fatalf("valid pair refused: %v", err)
	}
	if got.TLSCertFile != cert || got.TLSKeyFile != key {
		t.Fatalf("TLSCertFile, TLSKeyFile = %q, %q; want %q, %q", got.TLSCertFile, got.TLSKeyFile, cert, key)
	}
	// A chain (leaf then intermediate) is a valid certificate file.
	pemCert, _ := os.ReadFile(cert)
	ca, _ := testcert.NewCA()
	chain := filepath.Join(t.TempDir(), "chain.pem")
	if err := os.WriteFile(chain, append(pemCert, ca.CertPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromEnv(env(map[string]string{"TLS_CERT_FILE": chain, "TLS_KEY_FILE": key})); err != nil {
		t.Fatalf("certificate chain refused: %v", err)
	}
}

func TestTLSFilesRefused(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTLSPair(t, dir, "cert.pem", "key.pem")
	_, otherKey := writeTLSPair(t, dir, "other-cert.pem", "other-key.pem")
	certPEM, _ := os.ReadFile(cert)
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badDER := []byte("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name      string
		cert, key string
		wantVar   string // the variable the error names
		wantMsg   string
	}{
		{"cert without key", cert, "", "TLS_KEY_FILE", "both or neither"},
		{"key without cert", "", key, "TLS_CERT_FILE", "both or neither"},
		{"cert missing", filepath.Join(dir, "nope.pem"), key, "TLS_CERT_FILE", "cannot read the file: no such file or directory"},
		{"cert is a directory", dir, key, "TLS_CERT_FILE", "cannot read the file"},
		{"cert not PEM", file("garbage.pem", []byte("hello")), key, "TLS_CERT_FILE", "no PEM certificate"},
		{"cert half written", file("half.pem", certPEM[:len(certPEM)/2]), key, "TLS_CERT_FILE", "no PEM certificate"},
		{"files swapped", key, cert, "TLS_CERT_FILE", "no PEM certificate"},
		{"cert does not parse", file("bad-der.pem", badDER), key, "TLS_CERT_FILE", "does not parse"},
		{"key missing", cert, filepath.Join(dir, "nope-key.pem"), "TLS_KEY_FILE", "cannot read the file"},
		{"key not PEM", cert, file("garbage-key.pem", []byte("hello")), "TLS_KEY_FILE", "not the private key"},
		{"key of another certificate", cert, otherKey, "TLS_KEY_FILE", "not the private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(map[string]string{"TLS_CERT_FILE": tt.cert, "TLS_KEY_FILE": tt.key}))
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			var ve *VarError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *VarError", err)
			}
			if ve.Name != tt.wantVar || !strings.Contains(ve.Problem, tt.wantMsg) {
				t.Fatalf("error %q: want it to name %s and say %q", err, tt.wantVar, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("message %q does not name %s", err, tt.wantVar)
			}
		})
	}
}
