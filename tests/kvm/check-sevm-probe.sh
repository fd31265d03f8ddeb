#!/bin/sh
# sevm-probe on the real host: the table, valid JSON, and --require's exit
# status (0 possible, 3 not possible, 2 unknown name).
set -eu
probe=$1
[ -w /dev/kvm ] || { echo "SKIP: /dev/kvm cannot be opened read-write"; exit 77; }
out=$("$probe")
echo "$out" | grep -q 'intrahost' || { echo "FAIL: no flavour table"; exit 1; }
"$probe" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["kvm_api_version"] == 12; assert d["flavours"]["intrahost"]["possible"] is True' ||
	{ echo "FAIL: --json"; exit 1; }
"$probe" --require intrahost >/dev/null || { echo "FAIL: --require intrahost"; exit 1; }
st=0; "$probe" --require no-such-flavour >/dev/null 2>&1 || st=$?
[ $st -eq 2 ] || { echo "FAIL: unknown flavour gave $st"; exit 1; }
if [ ! -e /dev/sev ]; then
	st=0; "$probe" --require sev-send >/dev/null 2>&1 || st=$?
	[ $st -eq 3 ] || { echo "FAIL: sev-send without /dev/sev gave $st"; exit 1; }
fi
# On the SEV model every SEV flavour is possible, whatever this host has.
"$probe" --model --require sev-intrahost,sev-es-intrahost,mirror,sev-send,sev-receive >/dev/null ||
	{ echo "FAIL: --model does not show every SEV flavour possible"; exit 1; }
echo "sevm-probe: table, JSON, --require and --model behave"
