// Package testsvc owns what the tests of real services (PostgreSQL in
// internal/pgtest, Redis in internal/redistest) share: the rule that an
// unreachable service skips a test on a developer's machine but fails it
// under CI=true, messages that never show a password, and random names.
package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
)

// Unreachable skips t, or fails it when CI=true: CI must run these tests.
// pkg names the caller (pgtest), service the server (PostgreSQL); rawURL
// is shown without its password, with hint on how to point elsewhere.
func Unreachable(t testing.TB, pkg, service, rawURL, hint string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s unreachable at %s (%s): %v", service, Redact(rawURL), hint, err)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: CI=true, so %s tests must run: %s", pkg, service, msg)
	}
	t.Skip(pkg + ": " + msg)
}

// Redact is rawURL with any password hidden, for messages.
func Redact(rawURL string) string {
	p, err := url.Parse(rawURL)
	if err != nil {
		return "(not a URL)"
	}
	return p.Redacted()
}

// RandomHex is n random bytes in hex: unique database names and key
// prefixes, so tests run in parallel and leave nothing to each other.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
