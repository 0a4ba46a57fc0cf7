#!/bin/sh
# Starts a broker with the plugin in the foreground, for trying it out.
# Usage: examples/demo.sh PLUGIN_PATH [PORT]
set -eu
plugin=$(realpath "$1")
port=${2:-1884}
dir=$(realpath build)/demo
mkdir -p "$dir"
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
set_tcp_nodelay true
# Demo only: anyone on this machine may publish to \$CONTROL/tokens/v1.
allow_anonymous true
user $(id -un)
plugin $plugin
plugin_opt_state_file $dir/tokens.json
CONF
cat <<HELP
Broker on 127.0.0.1:$port, state in $dir/tokens.json. In another terminal:

  mosquitto_rr -p $port -t '\$CONTROL/tokens/v1' -e '\$CONTROL/tokens/v1/response' -m '{"commands":[{"command":"createRole","rolename":"sensors","acls":[{"acltype":"publishClientSend","topic":"sensors/#","allow":true}]}]}'
  mosquitto_rr -p $port -t '\$CONTROL/tokens/v1' -e '\$CONTROL/tokens/v1/response' -m '{"commands":[{"command":"createToken","name":"boiler-7","role":"sensors","validUntil":"2030-01-01T00:00:00Z"}]}'
  mosquitto_rr -p $port -t '\$CONTROL/tokens/v1' -e '\$CONTROL/tokens/v1/response' -m '{"commands":[{"command":"listTokens"}]}'

Stop the broker with Ctrl-C.
HELP
exec mosquitto -c "$dir/mosquitto.conf"
