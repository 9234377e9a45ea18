#!/bin/sh
# Make (or renew) the broker credential of one cloud component.
#
#   deploy/mosquitto/make-service-credential.sh NAME
#
# NAME is akita-ingest-N (one per ingest worker, N = 1..99: the broker ties each session
# to its username, so two workers never share one), akita-lpwa-N (one per LPWA worker)
# or akita-cloud (alerts, dead letters).
# The username is also the only client id the broker accepts for it. A random password is
# set (a new one for an existing account) and printed once on stdout.
set -eu
. "$(dirname "$0")/dynsec-lib.sh"
DIE_CODE=2

if [ $# -ne 1 ]; then
    die "usage: $0 akita-ingest-N|akita-lpwa-N|akita-cloud"
fi
name=$1
if printf '%s' "$name" | grep -Eq '^akita-ingest-[1-9][0-9]?$'; then
    role=akita-ingest
elif printf '%s' "$name" | grep -Eq '^akita-lpwa-[1-9][0-9]?$'; then
    role=akita-lpwa
elif [ "$name" = akita-cloud ]; then
    role=akita-cloud
else
    die "service name '$name' must be akita-ingest-N, akita-lpwa-N (N = 1..99) or akita-cloud"
fi
DIE_CODE=1
ctrl_setup
ensure_role "$role" "$role"
password=$(new_password)
set_client "$name" "$role" "$password"

echo "service: $name"
echo "password: $password"
echo "# cloud config: [ingest] username = \"$name\" (the client id follows it), and the
# password above in AKITA_INGEST_PASSWORD / AKITA_INGEST__PASSWORD"
