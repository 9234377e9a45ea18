#!/bin/sh
# Make (or renew) the broker credential of one LoRaWAN network server's MQTT integration.
#
#   deploy/mosquitto/make-netserver-credential.sh NS_ID
#
# NS_ID starts with "ns-" (so it never collides with a gateway or a service account) and
# is the username, the only client id the broker accepts for it, the owner of its meters
# in the registry (akita cloud device add <devEui> --gateway NS_ID --kind water_meter)
# and its topic prefix: it gets its own role netserver-NS_ID with the "netserver" lines
# of the role file, publishing only lpwa/NS_ID/application/+/device/+/event/+. Configure
# the network server with that prefix (ChirpStack v4: [integration.mqtt] event_topic =
# "lpwa/NS_ID/application/{{application_id}}/device/{{dev_eui}}/event/{{event}}").
# A random password is set (a new one for an existing account) and printed once.
set -eu
. "$(dirname "$0")/dynsec-lib.sh"
DIE_CODE=2

if [ $# -ne 1 ]; then
    die "usage: $0 NS_ID"
fi
ns=$1
# substituted into the role's topics: never a wildcard or a separator
if ! printf '%s' "$ns" | grep -Eq '^ns-[a-z0-9][a-z0-9_.-]{0,60}$'; then
    die "network server id '$ns' must match ns-[a-z0-9][a-z0-9_.-]{0,60}"
fi
DIE_CODE=1
ctrl_setup
ensure_role "netserver-$ns" netserver "$ns"
password=$(new_password)
set_client "$ns" "netserver-$ns" "$password"

echo "network server: $ns"
echo "password: $password"
echo "# network server MQTT integration: username \"$ns\", client id \"$ns\", topic prefix lpwa/$ns/"
