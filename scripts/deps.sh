#!/usr/bin/env bash
# Installs what building, testing and the demo need, and nothing twice:
# Debian packages (only the missing ones) and the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(clang llvm libbpf-dev libelf-dev zlib1g-dev libnetfilter-conntrack-dev pkg-config make gcc bpftool
      iproute2 iputils-ping util-linux nftables conntrack nmap hping3 redis-server curl systemd tmux python3 time
      xdp-tools iperf3 man-db dpkg-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing Debian packages: ${missing[*]}; run as root (sudo make ...) to install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || [[ $(node -p 'process.versions.node.split(".")[0]') -lt 20 ]]; then
  echo "deps: sentry-xdp needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci when node_modules is missing or older than the lock file
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "deps: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
