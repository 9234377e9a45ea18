# Shared by the credential scripts (sourced, not run). Talks to the running broker's
# dynamic-security plugin with mosquitto_ctrl as the broker admin.
#
# AKITA_BROKER_ADMIN names the admin's mosquitto_ctrl options file (made by
# init-broker.sh; default /etc/mosquitto/akita/admin.conf). mosquitto_ctrl reads it as
# $XDG_CONFIG_HOME/mosquitto_ctrl, so the admin password never appears in `ps`.

AKITA_BROKER_ADMIN=${AKITA_BROKER_ADMIN:-/etc/mosquitto/akita/admin.conf}
AKITA_ROLES=${AKITA_ROLES:-$(dirname "$0")/roles}

die() {
    echo "error: $*" >&2
    exit "${DIE_CODE:-1}"
}

ctrl_setup() {
    command -v mosquitto_ctrl >/dev/null 2>&1 ||
        die "mosquitto_ctrl not found (Debian package 'mosquitto')"
    [ -r "$AKITA_BROKER_ADMIN" ] ||
        die "broker admin options $AKITA_BROKER_ADMIN not readable (run init-broker.sh first)"
    [ -r "$AKITA_ROLES" ] || die "role file $AKITA_ROLES not readable"
    CTRL_HOME=$(mktemp -d)
    trap 'rm -rf "$CTRL_HOME"' EXIT
    ln -s "$(cd "$(dirname "$AKITA_BROKER_ADMIN")" && pwd)/$(basename "$AKITA_BROKER_ADMIN")" \
        "$CTRL_HOME/mosquitto_ctrl"
}

# ctrl ARGS... : run one dynsec command; prints mosquitto_ctrl's error and returns 1 on
# failure (mosquitto_ctrl 2.0 exits 0 even when the broker refuses a command).
# Stdin is passed through (passwords are given there, never as arguments).
ctrl() {
    _out=$(XDG_CONFIG_HOME=$CTRL_HOME mosquitto_ctrl dynsec "$@" 2>&1) || {
        printf '%s\n' "$_out" >&2
        return 1
    }
    case "$_out" in
    *Error:* | *"Connection error"* | *"Connection refused"* | *"not authorised"*)
        printf '%s\n' "$_out" | grep -v -e '^Warning: You are running' \
            -e '^This means all of the configuration' -e '^$' >&2
        return 1
        ;;
    esac
    CTRL_OUT=$_out
    return 0
}

# ctrl_ok_if EXPECTED ARGS... : like ctrl, but an error containing EXPECTED (e.g.
# "already exists") is not a failure; that makes the scripts safe to run again.
ctrl_ok_if() {
    _expected=$1
    shift
    _out=$(XDG_CONFIG_HOME=$CTRL_HOME mosquitto_ctrl dynsec "$@" 2>&1) || {
        printf '%s\n' "$_out" >&2
        return 1
    }
    case "$_out" in
    *"$_expected"*) return 0 ;;
    *Error:* | *"Connection error"* | *"Connection refused"* | *"not authorised"*)
        printf '%s\n' "$_out" | grep -v -e '^Warning: You are running' \
            -e '^This means all of the configuration' -e '^$' >&2
        return 1
        ;;
    esac
    return 0
}

# ensure_role NAME TEMPLATE [VALUE] : create role NAME with the ACLs listed for
# TEMPLATE in the role file ({gateway} and {partition} replaced by VALUE, which the
# callers have checked holds no wildcard or '/'). Safe to run again: a role or ACL that
# already exists is kept, missing ones are added.
ensure_role() {
    _name=$1
    _template=$2
    _value=${3:-}
    ctrl_ok_if "Role already exists" createRole "$_name" || die "cannot create role $_name"
    _found=0
    # a here-document, not a pipe: die must end the script, not a subshell
    while read -r _role _type _topic _rest; do
        case "$_role" in '' | '#'*) continue ;; esac
        [ "$_role" = "$_template" ] || continue
        [ -z "$_rest" ] || die "role file $AKITA_ROLES: extra words after '$_topic' ($_rest)"
        case "$_type" in
        publishClientSend | publishClientReceive | subscribeLiteral | subscribePattern) ;;
        *) die "role file $AKITA_ROLES: unknown ACL type '$_type' for role $_role" ;;
        esac
        _topic=$(printf '%s' "$_topic" | sed "s/{gateway}/$_value/g; s/{partition}/$_value/g")
        ctrl_ok_if "already exists" addRoleACL "$_name" "$_type" "$_topic" allow ||
            die "cannot add ACL $_type $_topic to role $_name"
        _found=$((_found + 1))
    done <<ROLES
$(cat "$AKITA_ROLES")
ROLES
    [ "$_found" -gt 0 ] || die "role file $AKITA_ROLES has no ACL for role '$_template'"
}

new_password() {
    head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-32
}

# set_client USERNAME ROLE PASSWORD : create the client bound to client id USERNAME with
# ROLE, or give an existing one the new PASSWORD (rotation).
set_client() {
    _user=$1
    _role=$2
    _password=$3
    if XDG_CONFIG_HOME=$CTRL_HOME mosquitto_ctrl dynsec getClient "$_user" 2>&1 |
        grep -q "Client not found"; then
        printf '%s\n%s\n' "$_password" "$_password" |
            ctrl createClient "$_user" -c "$_user" >/dev/null || die "cannot create client $_user"
        ctrl addClientRole "$_user" "$_role" || die "cannot give $_user the role $_role"
    else
        ctrl getClient "$_user" || die "cannot read client $_user"
        case "$CTRL_OUT" in
        *"Clientid: $_user"*) ;;
        *) die "client $_user exists but is not bound to client id $_user; fix it by hand" ;;
        esac
        case "$CTRL_OUT" in
        *" $_role (priority"*) ;;
        *) die "client $_user exists without role $_role; fix it by hand" ;;
        esac
        printf '%s\n%s\n' "$_password" "$_password" |
            ctrl setClientPassword "$_user" >/dev/null || die "cannot set the password of $_user"
    fi
}
