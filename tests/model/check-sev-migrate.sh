#!/bin/sh
# The remote-migration examples end to end over TCP on localhost, on the SEV
# model: sev-migrate-recv, then sev-migrate-send; both must succeed and the
# destination must find the guest's memory as the source launched it.
# usage: check-sev-migrate.sh SEND RECV [--es]
set -eu
send=$1 recv=$2
shift 2
out=$(mktemp -d)
trap 'kill "$rpid" 2>/dev/null || true; rm -rf "$out"' EXIT
port=$((20000 + $$ % 20000))
"$recv" "$@" --port "$port" >"$out/recv" 2>&1 &
rpid=$!
# The receiver prints a line once it listens.
for _ in $(seq 100); do
	grep -q listening "$out/recv" && break
	sleep 0.05
done
grep -q listening "$out/recv" || { cat "$out/recv"; echo "receiver did not listen"; exit 1; }
"$send" "$@" --port "$port" >"$out/send" 2>&1 || { cat "$out/send" "$out/recv"; exit 1; }
wait "$rpid" || { cat "$out/send" "$out/recv"; exit 1; }
cat "$out/send" "$out/recv"
grep -q "guest received: state RUNNING, 4 MiB as launched" "$out/recv"
grep -q "the guest is SENT here" "$out/send"
