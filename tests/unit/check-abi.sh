#!/bin/sh
# The exported ABI against the baseline in abi/libsevmigrate.abi (abidw of
# the 0.x library): an incompatible change (a removed function, a changed
# struct layout or signature) fails unless the version node in
# lib/libsevmigrate.map changed with it.  Additions pass.
#   check-abi.sh LIB BASELINE MAP HEADERS_DIR
#   check-abi.sh --update LIB BASELINE HEADERS_DIR   (writes the baseline)
set -eu
if [ "$1" = "--update" ]; then
	abidw --no-corpus-path --headers-dir "$4" --out-file "$3" "$2"
	echo "baseline written: $3"
	exit 0
fi
lib=$1 base=$2 map=$3 hdrs=$4
command -v abidiff >/dev/null || { echo "SKIP: abidiff (abigail-tools) is not installed"; exit 77; }
[ -f "$base" ] || { echo "FAIL: no baseline $base (write one with --update)"; exit 1; }
rc=0
out=$(abidiff --headers-dir2 "$hdrs" --no-added-syms "$base" "$lib") || rc=$?
echo "$out"
# abidiff's status bits: 1 error, 2 usage, 4 a change, 8 an incompatible change.
if [ $((rc & 3)) -ne 0 ]; then
	echo "FAIL: abidiff could not compare (status $rc)"
	exit 1
fi
# Additions are left out (--no-added-syms); any other change — a type's
# layout, a signature, a removal — fails under the same version node.
# Appending a field to a struct that starts with sz is compatible by the
# library's own rule, which abidiff cannot know: review the report, then
# write the baseline anew (--update) in the same commit.
if [ $((rc & 12)) -ne 0 ]; then
	node=$(sed -n 's/^\(LIBSEVMIGRATE_[0-9.]*\) {.*/\1/p' "$map" | tail -n 1)
	if grep -q "version='$node'" "$base"; then
		echo "FAIL: the ABI changed (above), and the version node is still $node"
		exit 1
	fi
	echo "the ABI changed under a new version node $node: write the baseline anew"
fi
echo "ABI: compatible with $(basename "$base")"
