package testsvc

import (
	"strings"
	"testing"
)

func TestRedactHidesThePassword(t *testing.T) {
	got := Redact("postgres://u:s3cret@db:5432/x")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "u:xxxxx@db") {
		t.Fatalf("Redact = %q", got)
	}
	if got := Redact("://bad"); got != "(not a URL)" {
		t.Fatalf("Redact of garbage = %q", got)
	}
}

func TestRandomHexIsUnique(t *testing.T) {
	a, b := RandomHex(8), RandomHex(8)
	if len(a) != 16 || a == b {
		t.Fatalf("RandomHex: %q %q", a, b)
	}
}
