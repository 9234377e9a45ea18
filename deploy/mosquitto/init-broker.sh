#!/bin/sh
# Make the broker's dynamic-security file and its admin, before Mosquitto's first start.
#
#   deploy/mosquitto/init-broker.sh [DIR [PORT]]
#
# DIR (default /etc/mosquitto/akita) receives:
#   dynamic-security.json  the plugin's file (clients, roles, password hashes); the broker
#                          rewrites it on every change, so DIR must be writable by it
#   admin.conf             mosquitto_ctrl options of the broker admin "akita-admin"
#                          (-h 127.0.0.1 -p PORT, default 1883, and a random password), 0600
# Then start Mosquitto and run make-roles.sh. Existing files are never overwritten.
set -eu

dir=${1:-/etc/mosquitto/akita}
port=${2:-1883}
case "$port" in
'' | *[!0-9]*) echo "error: port '$port' is not a number" >&2 && exit 2 ;;
esac
command -v mosquitto_ctrl >/dev/null 2>&1 || {
    echo "error: mosquitto_ctrl not found (Debian package 'mosquitto')" >&2
    exit 1
}
for f in "$dir/dynamic-security.json" "$dir/admin.conf"; do
    if [ -e "$f" ]; then
        echo "error: $f exists; refusing to replace the broker's credentials" >&2
        exit 1
    fi
done

umask 077
mkdir -p "$dir"
password=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-32)
# the password goes in on stdin (mosquitto_ctrl prompts twice), not on the command line
printf '%s\n%s\n' "$password" "$password" |
    mosquitto_ctrl dynsec init "$dir/dynamic-security.json" akita-admin >/dev/null
printf -- '-h 127.0.0.1\n-p %s\n-u akita-admin\n-P %s\n' "$port" "$password" >"$dir/admin.conf"

# mosquitto reads and rewrites the file after dropping root privileges to its own user
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto "$dir" "$dir/dynamic-security.json"
fi
echo "made $dir/dynamic-security.json and $dir/admin.conf (broker admin akita-admin)"
echo "next: start mosquitto, then deploy/mosquitto/make-roles.sh"
