//go:build !failpoints

package failpoint

import "testing"

// TestOffIgnoresTheEnvironment: without the failpoints tag a configured
// kill does nothing (this test would die if it did).
func TestOffIgnoresTheEnvironment(t *testing.T) {
	t.Setenv(EnvVar, "after-commit=kill")
	Hit("after-commit")
}
