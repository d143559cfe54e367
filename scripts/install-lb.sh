#!/usr/bin/env bash
# Installs the load balancer `make run-cluster` puts in front of the
# instances: Debian's haproxy, with apt-get, if it is not there yet. It
# does not start or enable the system's haproxy service: run-cluster runs
# its own, in the foreground, with deploy/haproxy.cfg.
set -euo pipefail

if command -v haproxy >/dev/null 2>&1; then
  echo "haproxy: $(haproxy -v | head -n1)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-lb: haproxy is missing and this is not a Debian-like system: install HAProxy 2.x by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

# Keep the package's service from starting on install (it would take
# port 80 with the default configuration), unless a policy already says.
cleanup=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  cleanup="yes"
fi
trap '[ -n "$cleanup" ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT

echo "install-lb: installing haproxy (apt-get)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends haproxy >/dev/null
echo "haproxy: $(haproxy -v | head -n1)"
