#!/bin/sh
# Make (or renew) the broker credential of one gateway.
#
#   deploy/mosquitto/make-gateway-credential.sh GATEWAY_ID
#
# The username, and the only client id the broker lets it use, is the gateway id. The
# gateway gets its own role gateway-GATEWAY_ID with the "gateway" lines of the role file
# (publish under akita/v1/GATEWAY_ID/ only, read its own cmd topic). A random password
# is set (a new one if the gateway exists: rotation) and printed once on stdout for the
# gateway's password_file. Changes apply at once; no broker reload is needed.
# Needs the running broker and its admin (AKITA_BROKER_ADMIN, see dynsec-lib.sh).
set -eu
. "$(dirname "$0")/dynsec-lib.sh"
DIE_CODE=2

if [ $# -ne 1 ]; then
    die "usage: $0 GATEWAY_ID"
fi
gateway=$1
# Same rule as schemas.topics: it ends up in topics and InfluxDB tags, and it is
# substituted into the role's topics, so it can never carry a wildcard.
if ! printf '%s' "$gateway" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'; then
    die "gateway id '$gateway' must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
fi
lower=$(printf '%s' "$gateway" | tr 'A-Z' 'a-z')
case "$lower" in
deadletter | alerts | akita-* | ns-*)
    die "'$gateway' is reserved (topic word, akita-* service or ns-* network server account)"
    ;;
esac
DIE_CODE=1
ctrl_setup
ensure_role "gateway-$gateway" gateway "$gateway"
password=$(new_password)
set_client "$gateway" "gateway-$gateway" "$password"

echo "gateway: $gateway"
echo "password: $password"
echo "# edge config: [mqtt] username = \"$gateway\", tls = true, port = 8883, and the
# password above in password_file (e.g. /etc/akita/mqtt.secret, mode 600)"
