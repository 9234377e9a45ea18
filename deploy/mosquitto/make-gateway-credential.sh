#!/bin/sh
# Make (or replace) the broker credential of one gateway.
#
#   deploy/mosquitto/make-gateway-credential.sh GATEWAY_ID [PASSWORD_FILE]
#
# The username is the gateway id, so the ACL's "pattern write akita/v1/%u/..." lets the
# gateway publish under its own prefix only. A random password is generated, added to
# PASSWORD_FILE (default /etc/mosquitto/akita/passwd, created when missing) hashed by
# mosquitto_passwd, and printed once on stdout for the gateway's edge config. Reload the
# broker afterwards (systemctl reload mosquitto, or kill -HUP its pid).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 GATEWAY_ID [PASSWORD_FILE]" >&2
    exit 2
fi
gateway=$1
passwd_file=${2:-/etc/mosquitto/akita/passwd}

# Same rule as schemas.topics: it ends up in topics and InfluxDB tags.
if ! printf '%s' "$gateway" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'; then
    echo "error: gateway id '$gateway' must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}" >&2
    exit 2
fi
case "$gateway" in
    deadletter|alerts|akita-ingest|akita-cloud)
        echo "error: '$gateway' is reserved (topic word or service account)" >&2
        exit 2
        ;;
esac
command -v mosquitto_passwd >/dev/null 2>&1 || {
    echo "error: mosquitto_passwd not found (Debian package 'mosquitto')" >&2
    exit 1
}

password=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-32)
umask 077
if [ -f "$passwd_file" ]; then
    mosquitto_passwd -b "$passwd_file" "$gateway" "$password"
else
    mkdir -p "$(dirname "$passwd_file")"
    mosquitto_passwd -c -b "$passwd_file" "$gateway" "$password"
fi

# mosquitto reads the file after dropping root privileges to its own user
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto "$passwd_file"
fi

echo "gateway: $gateway"
echo "password: $password"
echo "# edge config: [mqtt] username = \"$gateway\", tls = true, port = 8883, and the
# password above in password_file (e.g. /etc/akita/mqtt.secret, mode 600)"
