#!/bin/sh
# Make (or renew) the broker credential of one cloud component.
#
#   deploy/mosquitto/make-service-credential.sh akita-ingest-N
#   deploy/mosquitto/make-service-credential.sh akita-lpwa-N
#   deploy/mosquitto/make-service-credential.sh akita-cloud
#   deploy/mosquitto/make-service-credential.sh akita-images
#   deploy/mosquitto/make-service-credential.sh akita-detect PARTITIONS
#
# akita-ingest-N: one per ingest worker (N = 1..99; the broker ties each session to its
# username, so two workers never share one); it may also hand stored batches to the
# detector tier. akita-lpwa-N: one per LPWA worker. akita-cloud: alerts, commands,
# dead letters. akita-images: the image receiver of `akita cloud run` (camera images only).
# akita-detect PARTITIONS: the detector tier's partition sessions akita-detect-0 ...
# akita-detect-<PARTITIONS-1> (PARTITIONS = [ingest] detect_partitions, 1..1024), each
# with its own role reading only its partition's hand-offs, all with one password: every
# detector instance (and `akita cloud run` in a shared group) may come to own any
# partition. Run it again with a larger PARTITIONS to add accounts (all get a new password).
# The username is also the only client id the broker accepts for it. A random password is
# set (a new one for an existing account) and printed once on stdout.
set -eu
. "$(dirname "$0")/dynsec-lib.sh"
DIE_CODE=2

usage="usage: $0 akita-ingest-N|akita-lpwa-N|akita-cloud|akita-images|akita-detect PARTITIONS"
[ $# -ge 1 ] || die "$usage"
name=$1
if [ "$name" = akita-detect ]; then
    [ $# -eq 2 ] || die "akita-detect needs the number of partitions; $usage"
    partitions=$2
    # a plain decimal 1..1024, the detector tier's own limit (no sign, no leading zero)
    if ! printf '%s' "$partitions" | grep -Eq '^[1-9][0-9]{0,3}$' ||
        [ "$partitions" -gt 1024 ]; then
        die "partitions '$partitions' must be a number from 1 to 1024 ([ingest] detect_partitions)"
    fi
elif [ $# -ne 1 ]; then
    die "$usage"
elif printf '%s' "$name" | grep -Eq '^akita-ingest-[1-9][0-9]?$'; then
    role=akita-ingest
elif printf '%s' "$name" | grep -Eq '^akita-lpwa-[1-9][0-9]?$'; then
    role=akita-lpwa
elif [ "$name" = akita-cloud ] || [ "$name" = akita-images ]; then
    role=$name
else
    die "service name '$name' must be akita-ingest-N, akita-lpwa-N (N = 1..99), akita-cloud," \
        "akita-images or akita-detect"
fi
DIE_CODE=1
ctrl_setup
password=$(new_password)

if [ "$name" = akita-detect ]; then
    p=0
    while [ "$p" -lt "$partitions" ]; do
        # a role per partition: the plugin (2.0) expands no %u/%c in ACLs
        ensure_role "akita-detect-$p" akita-detect "$p"
        set_client "akita-detect-$p" "akita-detect-$p" "$password"
        p=$((p + 1))
    done
    echo "service: akita-detect-0 ... akita-detect-$((partitions - 1))"
    echo "password: $password"
    echo "# every detector instance (akita cloud detect; akita cloud run in a shared group):
# AKITA_DETECT_USERNAME='akita-detect-{p}' and the password above in AKITA_DETECT_PASSWORD"
    exit 0
fi

ensure_role "$role" "$role"
set_client "$name" "$role" "$password"

echo "service: $name"
echo "password: $password"
if [ "$name" = akita-images ]; then
    echo "# cloud config: [images] username = \"akita-images\" (the client id follows it), and
# the password above in AKITA_IMAGES__PASSWORD"
    exit 0
fi
echo "# cloud config: [ingest] username = \"$name\" (the client id follows it), and the
# password above in AKITA_INGEST_PASSWORD / AKITA_INGEST__PASSWORD"
