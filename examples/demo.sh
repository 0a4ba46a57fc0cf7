#!/bin/sh
# `make demo`: a broker with the plugin on 127.0.0.1:$PORT, a fresh demo
# state (an admin token, a "sensors" role and a device token, and a fleet
# from examples/fleet.sh: one "device" role, two device tokens each bound
# to its client id and confined to its own topics, a dashboard), the web
# console on 127.0.0.1:$CONSOLE_PORT, and the exact commands to try. Runs
# until Ctrl-C. The demo state lives in build/demo and is made anew on every
# run (tokens cannot be shown twice).
set -eu

build=$(realpath "${BUILD:-build}")
port=${PORT:-1884}
console_port=${CONSOLE_PORT:-8088}
dir=$build/demo
export LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

rm -rf "$dir"
mkdir -p "$dir"
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
set_tcp_nodelay true
allow_anonymous false
user $(id -un)
plugin $build/mosquitto_tokens.so
plugin_opt_state_file $dir/tokens.json
CONF

token_of() { grep -o 'mqtk_[A-Za-z0-9_-]*' "$1" | head -n 1; }

mosquitto_ctrl tokens init "$dir/tokens.json" admin 30d > "$dir/init.txt"
admin=$(token_of "$dir/init.txt")

mosquitto -c "$dir/mosquitto.conf" > "$dir/broker.log" 2>&1 &
broker=$!
console=
trap 'kill $console $broker 2>/dev/null; wait $broker 2>/dev/null; echo; echo "Broker and console stopped."' EXIT
trap 'exit 0' INT TERM
for attempt in $(seq 50); do
	grep -q "running" "$dir/broker.log" && break
	kill -0 $broker 2>/dev/null || { cat "$dir/broker.log"; exit 1; }
	sleep 0.1
done

ctrl() { mosquitto_ctrl -p "$port" -u admin -P "$admin" tokens "$@" 2>/dev/null; }
ctrl createRole sensors > /dev/null
ctrl addRoleACL sensors publishClientSend 'sensors/#' allow > /dev/null
ctrl addRoleACL sensors subscribePattern 'sensors/#' allow > /dev/null
ctrl create boiler-7 sensors 7d > "$dir/device.txt"
device=$(token_of "$dir/device.txt")
here=$(dirname "$(realpath "$0")")
sh "$here/fleet.sh" 2 "$dir/fleet.txt" -p "$port" -u admin -P "$admin" > "$dir/fleet.log" 2>&1 \
	|| { cat "$dir/fleet.log"; exit 1; }
fleet_secret() { awk -v name="$1" '$1 == name {print $3}' "$dir/fleet.txt"; }
one=$(fleet_secret device-0001)
two=$(fleet_secret device-0002)
wall=$(fleet_secret dashboard)

"$build/mosquitto_tokens_console" --broker "127.0.0.1:$port" --listen "127.0.0.1:$console_port" \
	> "$dir/console.log" 2>&1 &
console=$!

cat <<HELP

mosquitto with mosquitto_tokens is running on 127.0.0.1:$port (log: $dir/broker.log).
Demo tokens (made for this run only):

  admin     $admin
  boiler-7  $device   (role "sensors": publish and subscribe under sensors/#)

A fleet (examples/fleet.sh; secrets also in $dir/fleet.txt): one role
"device" (devices/%t/#, inbox/%c) for every device, each token bound to the
client id of its name, and a dashboard that reads devices/#:

  device-0001  $one
  device-0002  $two
  dashboard    $wall

Try, in another terminal:

  export LD_LIBRARY_PATH=$build
  mosquitto_ctrl -p $port -u admin -P '$admin' tokens list
  mosquitto_sub -p $port -u boiler-7 -P '$device' -t 'sensors/#' -v
  mosquitto_pub -p $port -u boiler-7 -P '$device' -t sensors/boiler-7/temperature -m 21.5
  mosquitto_pub -p $port -u boiler-7 -P '$device' -t other/topic -m refused    # not in the role: dropped
  mosquitto_ctrl -p $port -u admin -P '$admin' tokens create ci-bot sensors 12h
  mosquitto_ctrl -p $port -u admin -P '$admin' tokens revoke boiler-7         # closes the subscriber

  # the fleet: each device under its own name only
  mosquitto_sub -p $port -u dashboard -P '$wall' -t 'devices/#' -v
  mosquitto_pub -p $port -i device-0001 -u device-0001 -P '$one' -t devices/device-0001/temp -m 21.5
  mosquitto_pub -p $port -i device-0001 -u device-0001 -P '$one' -t devices/device-0002/temp -m forged  # dropped
  mosquitto_pub -p $port -i device-0002 -u device-0001 -P '$one' -t devices/device-0002/temp -m x       # refused: not its client id

The web console (log in with the admin token above):

  http://127.0.0.1:$console_port/

Stop the broker and the console with Ctrl-C.
HELP
wait $broker
