#!/bin/sh
# Builds one Mosquitto release from its pristine source archive (in
# ../shared/vendor, see its README.md) into BUILD/mosquitto-VERSION/_prefix,
# for the tests against releases Debian does not package (make
# vendor-brokers; the tests select one with MOSQUITTO_PREFIX).
#
#   test/brokers/build.sh VENDOR BUILD VERSION JOBS [CMAKE_OPTION...]
#
# The archive's SHA256 must match VENDOR/SHA256SUMS. A build is reused
# while _prefix/.vendor-stamp says it came from the same archive (its
# SHA256), the same cmake options and the same prefix; a source tree that
# is already there and still equals the archive (tar --compare) is built
# again in place (incrementally), anything else is extracted afresh.
set -eu
vendor=$1 build=$2 version=$3 jobs=$4
shift 4
name=mosquitto-$version
archive=$vendor/$name.tar.gz
mkdir -p "$build"
build=$(cd "$build" && pwd)
source=$build/$name
prefix=$source/_prefix
stamp=$prefix/.vendor-stamp
say() { echo "vendor-brokers: $name: $*"; }

if [ ! -f "$archive" ] || [ ! -f "$vendor/SHA256SUMS" ]; then
	say "$archive or $vendor/SHA256SUMS is missing (the pristine archives, see ../shared/vendor/README.md)" >&2
	exit 1
fi
# The line for this archive, checked by sha256sum itself.
line=$(grep -E "^[0-9a-f]{64}  $name\.tar\.gz$" "$vendor/SHA256SUMS" || true)
if [ -z "$line" ]; then
	say "no checksum for $name.tar.gz in $vendor/SHA256SUMS" >&2
	exit 1
fi
if ! (cd "$vendor" && echo "$line" | sha256sum -c --quiet -); then
	say "$archive does not match its checksum in SHA256SUMS: not building it" >&2
	exit 1
fi
sum=${line%% *}

# What the build in _prefix must have come from.
wanted=$(printf 'archive %s\nsha256 %s\ncmake %s\nprefix %s\n' "$name.tar.gz" "$sum" "$*" "$prefix")

installed() {
	for f in sbin/mosquitto bin/mosquitto_pub bin/mosquitto_sub bin/mosquitto_rr bin/mosquitto_ctrl \
			bin/mosquitto_passwd lib/libmosquitto.so.1 lib/mosquitto_dynamic_security.so; do
		[ -e "$prefix/$f" ] || return 1
	done
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && installed; then
	say "up to date ($prefix)"
	exit 0
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$wanted" ]; then
	# Another archive or other options: start again from the archive (an
	# option dropped from the list would otherwise stay in cmake's cache).
	say "built from another archive or with other options: rebuilding"
	rm -rf "$source"
fi
if [ -d "$source" ] && tar --compare -zf "$archive" -C "$build" >/dev/null 2>&1; then
	# Built by hand as ../shared/vendor/README.md shows, or an interrupted
	# build: cmake reconfigures and rebuilds only what is out of date.
	say "the source tree equals the archive: building it in place"
else
	say "extracting $archive"
	rm -rf "$source"
	tar -xzf "$archive" -C "$build"
fi
rm -f "$stamp"
started=$(date +%s)
cmake -S "$source" -B "$source/_build" -DCMAKE_INSTALL_PREFIX="$prefix" "$@" >"$source/_build.log" 2>&1 ||
	{ tail -40 "$source/_build.log" >&2; say "cmake failed (whole log: $source/_build.log)" >&2; exit 1; }
cmake --build "$source/_build" -j "$jobs" >>"$source/_build.log" 2>&1 ||
	{ tail -40 "$source/_build.log" >&2; say "the build failed (whole log: $source/_build.log)" >&2; exit 1; }
cmake --install "$source/_build" >>"$source/_build.log" 2>&1 ||
	{ tail -40 "$source/_build.log" >&2; say "the install failed (whole log: $source/_build.log)" >&2; exit 1; }
installed || { say "the install lacks a broker, a client or a library in $prefix" >&2; exit 1; }

# An option that the build would otherwise drop silently when a library is
# missing (2.1's http_api listener needs libmicrohttpd).
case " $* " in
*" -DWITH_HTTP_API=ON "*)
	if ! readelf -d "$prefix/sbin/mosquitto" | grep -q 'libmicrohttpd'; then
		say "built without the http_api listener (is libmicrohttpd-dev installed? make deps)" >&2
		exit 1
	fi ;;
esac

echo "$wanted" > "$stamp"
say "built in $(( $(date +%s) - started )) s: $("$prefix/sbin/mosquitto" -h 2>/dev/null | head -1)"
