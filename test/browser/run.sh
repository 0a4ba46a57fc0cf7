#!/bin/sh
# The console page in headless Chromium (test/browser/console.test.js).
# Installs what is missing (Debian's chromium; playwright-core from npm),
# then runs the test against build/ (run `make` first). Works as root from
# a clean checkout; otherwise uses sudo for apt-get.
#   test/browser/run.sh     BUILD=... tests another build folder;
#                           SCREENSHOTS=docs remakes the README's pictures
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ ! -x /usr/bin/chromium ]; then
	sudo=$( [ "$(id -u)" = 0 ] || echo sudo )
	echo "Installing chromium"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
fi
# playwright-core needs Node.js 20 or later (the machine's; Debian 12's own is 18).
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null \
		|| ! command -v npm >/dev/null 2>&1; then
	echo "test/browser needs Node.js 20 or later and npm" >&2
	exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
	(cd "$here" && npm install --no-audit --no-fund)
fi
for f in mosquitto_tokens.so mosquitto_tokens_console; do
	if [ ! -e "${BUILD:-$repo/build}/$f" ]; then
		echo "missing ${BUILD:-$repo/build}/$f: run make first" >&2
		exit 1
	fi
done
exec node "$here/console.test.js"
