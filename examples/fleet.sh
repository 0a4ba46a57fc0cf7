#!/bin/sh
# A fleet on one role: every device may publish and subscribe under
# devices/<its token's name>/ only, each token logs in only with its own
# client id, and one dashboard token reads the whole fleet.
#
#   examples/fleet.sh COUNT SECRETS_FILE [mosquitto_ctrl connection options]
#   examples/fleet.sh 100 fleet-tokens.txt -p 1883 -u admin -P "$ADMIN_TOKEN"
#
# Creates the roles "device" and "dashboard" (if they are missing), the
# tokens device-0001 ... (each bound to the client id of the same name)
# and "dashboard", valid for $VALID (default 90d). Tokens are shown once:
# their secrets go to SECRETS_FILE (a new file, mode 0600, one
# "<name> <client id> <secret>" line each), never to the terminal.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 COUNT SECRETS_FILE [mosquitto_ctrl connection options]" >&2
	exit 2
fi
count=$1
secrets=$2
shift 2
valid=${VALID:-90d}
case $count in
	''|*[!0-9]*) echo "$0: COUNT must be a number" >&2; exit 2 ;;
esac

# A new file only: an existing one (or a link planted in its place) may be
# readable by others, and its mode would be kept.
umask 077
if ! (set -C; : > "$secrets") 2> /dev/null; then
	echo "$0: $secrets exists; give a new file for the secrets (they are never written over)" >&2
	exit 2
fi

# One role for every device. %t is the token's name, chosen here by the
# admin; %c (the client id) is as trusted as the binding made below.
if mosquitto_ctrl "$@" tokens getRole device > /dev/null 2>&1; then
	echo "role device exists; left as it is"
else
	mosquitto_ctrl "$@" tokens createRole device > /dev/null
	mosquitto_ctrl "$@" tokens addRoleACL device publishClientSend 'devices/%t/#' allow > /dev/null
	mosquitto_ctrl "$@" tokens addRoleACL device subscribePattern 'devices/%t/#' allow > /dev/null
	mosquitto_ctrl "$@" tokens addRoleACL device subscribeLiteral 'inbox/%c' allow > /dev/null
	echo "role device created: devices/<token name>/# and inbox/<client id>"
fi
if mosquitto_ctrl "$@" tokens getRole dashboard > /dev/null 2>&1; then
	echo "role dashboard exists; left as it is"
else
	mosquitto_ctrl "$@" tokens createRole dashboard > /dev/null
	mosquitto_ctrl "$@" tokens addRoleACL dashboard subscribePattern 'devices/#' allow > /dev/null
	mosquitto_ctrl "$@" tokens addRoleACL dashboard publishClientSend 'inbox/+' allow > /dev/null
	echo "role dashboard created: reads devices/#, writes to any device's inbox"
fi

# The secret from `tokens create`'s output; stops the script if there is
# none (the create failed, and mosquitto_ctrl said why).
create() {
	output=$(mosquitto_ctrl "$@") || exit 1
	secret=$(printf '%s\n' "$output" | grep -o 'mqtk_[A-Za-z0-9_-]*' | head -n 1)
	[ -n "$secret" ] || { printf '%s\n' "$output" >&2; exit 1; }
}

i=1
while [ "$i" -le "$count" ]; do
	name=$(printf 'device-%04d' "$i")
	create "$@" tokens create "$name" device "$valid" --client-id "$name"
	echo "$name $name $secret" >> "$secrets"
	i=$((i + 1))
done
create "$@" tokens create dashboard dashboard "$valid"
echo "dashboard - $secret" >> "$secrets"
echo "$count device tokens and a dashboard token created; their secrets are in $secrets"
