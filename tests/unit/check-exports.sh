#!/bin/sh
# The version script, the public header and the library's dynamic symbol
# table must name the same functions: nothing exported by accident, nothing
# declared and missing; and each has its man page.
set -eu
lib=$1 map=$2 header=$3 nm=$4 mandir=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$nm" -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" { sub(/@.*/, "", $3); print $3 }' \
	| sort -u >"$tmp/exported"
sed -n 's/^[[:space:]]*\(sevm_[a-z0-9_]*\);.*/\1/p' "$map" | sort -u >"$tmp/map"
# Prototypes: a sevm_ name followed by "(" outside a typedef or a comment.
grep -v '^typedef\|^[[:space:]]*\*\|^/\*' "$header" \
	| grep -o '\bsevm_[a-z0-9_]*(' | tr -d '(' | sort -u >"$tmp/header"

status=0
for pair in "exported map" "map header"; do
	set -- $pair
	if ! diff -u "$tmp/$1" "$tmp/$2" >"$tmp/diff"; then
		echo "FAIL: $1 and $2 differ:"
		cat "$tmp/diff"
		status=1
	fi
done
for sym in $(cat "$tmp/map"); do
	[ -f "$mandir/$sym.3" ] || { echo "FAIL: $sym has no man page $mandir/$sym.3"; status=1; }
done
grep -q 'LIBSEVMIGRATE_0.1' "$map" || { echo "FAIL: no LIBSEVMIGRATE_0.1 node"; status=1; }
"$nm" -D --defined-only "$lib" | grep -q 'sevm_probe@@LIBSEVMIGRATE_0.1' ||
	{ echo "FAIL: symbols are not versioned LIBSEVMIGRATE_0.1"; status=1; }
[ $status -eq 0 ] && echo "exports: $(wc -l <"$tmp/map") functions agree in map, header and library"
exit $status
