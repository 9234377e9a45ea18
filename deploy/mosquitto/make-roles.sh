#!/bin/sh
# Give the running broker Akita's default-deny access rules and the service roles.
#
#   deploy/mosquitto/make-roles.sh
#
# Roles come from the file "roles" next to this script (AKITA_ROLES overrides it); the
# broker admin from AKITA_BROKER_ADMIN (default /etc/mosquitto/akita/admin.conf). Safe to
# run again after an upgrade: existing roles and ACLs are kept, new ones are added.
set -eu
. "$(dirname "$0")/dynsec-lib.sh"
ctrl_setup

# Nothing is allowed unless a role says so; in particular a SUBSCRIBE, which the plain
# acl_file of Mosquitto 2.0 never checks (see README.md).
ctrl setDefaultACLAccess publishClientSend deny || die "cannot set default access"
ctrl setDefaultACLAccess publishClientReceive deny || die "cannot set default access"
ctrl setDefaultACLAccess subscribe deny || die "cannot set default access"
ctrl setDefaultACLAccess unsubscribe allow || die "cannot set default access"

for role in akita-ingest akita-cloud akita-lpwa akita-images; do
    ensure_role "$role" "$role"
done
echo "roles akita-ingest, akita-cloud, akita-lpwa and akita-images are set; default access: deny"
