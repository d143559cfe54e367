package main

import (
	"os"
	"os/exec"
	"testing"
)

// The load balancer's configuration in the repository is one HAProxy
// accepts (checked where haproxy is installed: scripts/install-lb.sh).
func TestHAProxyConfigChecks(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy not installed: .ci/run installs it with scripts/install-lb.sh")
		}
		t.Skip("haproxy not installed (bash scripts/install-lb.sh installs it)")
	}
	out, err := exec.Command(bin, "-c", "-f", "deploy/haproxy.cfg").CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c -f deploy/haproxy.cfg: %v\n%s", err, out)
	}
}
