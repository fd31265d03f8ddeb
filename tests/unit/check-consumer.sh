#!/bin/sh
# Install into a scratch DESTDIR, then build and run a consumer that finds
# the library only through `pkg-config --cflags --libs libsevmigrate`.
set -eu
build=$1 src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

# An instrumented library needs its sanitizer runtime loaded first, which a
# plain consumer does not do: this check belongs to the normal build.
if readelf -d "$build/lib/libsevmigrate.so" | grep -q 'NEEDED.*lib[at]san'; then
	echo "SKIP: sanitizer build; the consumer check runs in the normal build"
	exit 77
fi
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >/dev/null
pcdir=$(dirname "$(find "$dest" -name libsevmigrate.pc | head -n1)")
[ -n "$pcdir" ] || { echo "FAIL: no libsevmigrate.pc installed"; exit 1; }
for f in sevmigrate.h libsevmigrate.so.0 sevm_probe.3; do
	find "$dest" -name "$f*" | grep -q . || { echo "FAIL: $f not installed"; exit 1; }
done

export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs libsevmigrate)
libdir=$(pkg-config --variable=libdir libsevmigrate)
${CC:-cc} -Wall -Wextra -Werror -o "$dest/consumer" "$src" $flags
LD_LIBRARY_PATH="$libdir" "$dest/consumer"
# The SONAME is what the consumer will look for at run time.
readelf -d "$dest/consumer" | grep -q 'NEEDED.*libsevmigrate.so.0' ||
	{ echo "FAIL: consumer does not need libsevmigrate.so.0"; exit 1; }
echo "consumer: built with pkg-config ($flags) and ran"
