#!/bin/sh
# Install, as root on Debian 12, the packages the build and tests need, only
# when some are missing.  Run by tools/test and tools/demo.
set -eu
need="gcc meson ninja-build pkg-config check libcap-dev libssl-dev binutils"
case "${1:-}" in
test) need="$need python3 clang libclang-rt-14-dev iproute2 abigail-tools clang-tools-14" ;;
esac
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # word splitting is the point
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
