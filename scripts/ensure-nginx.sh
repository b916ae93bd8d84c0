#!/usr/bin/env bash
# Makes sure an nginx binary is there for the update-channel tests, which start their own
# nginx on loopback (tests/src/nginx.rs): installs Debian's `nginx` package when it is
# missing. Only the binary is used: the package's own service is kept from starting
# (policy-rc.d), and nothing listens until a test starts its private instance.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "ensure-nginx: nginx is missing and installing it needs root (apt-get install nginx)" >&2
  exit 1
fi
policy=/usr/sbin/policy-rc.d
created=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created=1
fi
trap '[[ $created == 1 ]] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx >/dev/null
# The package may have started its service anyway (no init system here honours the policy
# in every case): the tests want port 80 and the default site left alone, so stop it.
if command -v nginx >/dev/null 2>&1; then
  nginx -s quit 2>/dev/null || true
fi
/usr/sbin/nginx -v
