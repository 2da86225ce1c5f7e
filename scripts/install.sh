#!/bin/sh
# Install, upgrade or remove the charge point firmware as a systemd service on a
# Debian bookworm / Raspberry Pi OS board. Run as root from a checkout or an
# unpacked release:
#
#   scripts/install.sh                       install, or upgrade: a new venv, same config and state
#   scripts/install.sh --uninstall           stop and remove the service and /opt/chargepoint
#   scripts/install.sh --uninstall --purge   also remove /etc/chargepoint, /var/lib/chargepoint,
#                                            /var/log/chargepoint and the chargepoint user
#
# Options:
#   --wheels DIR     install offline from a directory of wheels (pip --no-index --find-links)
#   --no-systemctl   do not call systemctl (the unit file is still installed or removed)
# Environment:
#   DESTDIR    install into this root instead of / (image builds, tests): the user and
#              groups are written into its /etc/passwd and /etc/group when it has them
#              (systemd-sysusers --root), nothing is chowned, systemctl only runs as
#              `systemctl --root`
#   PYTHON     the Python 3.11+ interpreter, with pip 22.3+, the venv is made from and
#              installed with (default python3: Debian's, with python3-pip and python3-venv)
#   SYSTEMCTL  the systemctl to call (default systemctl)
set -eu

NAME=chargepoint
UNIT_NAME=chargepoint.service
PYTHON=${PYTHON:-python3}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
ROOT=${DESTDIR:-}
ROOT=${ROOT%/}

OPT=$ROOT/opt/chargepoint
ETC=$ROOT/etc/chargepoint
STATE=$ROOT/var/lib/chargepoint
LOGS=$ROOT/var/log/chargepoint
UNIT=$ROOT/etc/systemd/system/$UNIT_NAME
SYSUSERS=$ROOT/etc/sysusers.d/chargepoint.conf
UDEV_RULE=$ROOT/etc/udev/rules.d/60-chargepoint-gpio.rules
CONFIG=$ETC/chargepoint.yaml

SRC=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '%s\n' "install.sh: $*"; }
die() { printf '%s\n' "install.sh: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
}

action=install
purge=no
use_systemctl=yes
wheels=
while [ $# -gt 0 ]; do
    case $1 in
        install) action=install ;;
        --uninstall | uninstall) action=uninstall ;;
        --purge) purge=yes ;;
        --no-systemctl) use_systemctl=no ;;
        --wheels)
            [ $# -ge 2 ] || die "--wheels needs a directory"
            wheels=$(cd "$2" && pwd) || die "no such directory: $2"
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[ "$purge" = no ] || [ "$action" = uninstall ] || die "--purge goes with --uninstall"

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (or set DESTDIR to install into a directory)"
fi
if [ "$use_systemctl" = yes ] && ! command -v "$SYSTEMCTL" >/dev/null 2>&1; then
    say "no $SYSTEMCTL here: not registering the service"
    use_systemctl=no
fi

# The host's systemd, when it runs and we install into /.
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------- install

# The user, and the groups that give it the hardware: gpio (created where missing, with a
# udev rule giving it /dev/gpiochip*) and dialout. The unit names no group itself, so a
# board without one still starts the service (systemd gives it the user's groups).
create_user() {
    install_file "$SRC/systemd/chargepoint.sysusers" "$SYSUSERS"
    install_file "$SRC/systemd/60-chargepoint-gpio.rules" "$UDEV_RULE"
    if command -v systemd-sysusers >/dev/null 2>&1; then
        if [ -z "$ROOT" ]; then
            systemd-sysusers - <"$SYSUSERS"
        elif [ -e "$ROOT/etc/passwd" ]; then
            systemd-sysusers --root="$ROOT" - <"$SYSUSERS"
        else
            say "no $ROOT/etc/passwd: create the $NAME user and groups on the target" \
                "(systemd-sysusers $SYSUSERS)"
        fi
    elif [ -n "$ROOT" ]; then
        say "DESTDIR set: not creating the $NAME user (create it on the target)"
    else
        for group in gpio dialout; do
            getent group "$group" >/dev/null || groupadd --system "$group"
        done
        if ! getent passwd "$NAME" >/dev/null; then
            useradd --system --user-group --home-dir /var/lib/chargepoint --no-create-home \
                --shell /usr/sbin/nologin --comment "charge point firmware" "$NAME"
        fi
        usermod --append --groups gpio,dialout "$NAME"
    fi
    if [ -z "$ROOT" ]; then
        getent passwd "$NAME" >/dev/null || die "could not create the $NAME user"
        say "user $NAME in groups: $(id -nG "$NAME")"
        if command -v udevadm >/dev/null 2>&1 && [ -e /run/udev/control ]; then
            udevadm control --reload-rules && udevadm trigger --subsystem-match=gpio || true
        fi
    fi
}

install_file() {
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2.new"
    chmod 0644 "$2.new"
    mv "$2.new" "$2"
}

check_python() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        die "$PYTHON is not Python 3.11 or newer"
    fi
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv' 2>/dev/null; then
        if [ -z "$ROOT" ] && command -v apt-get >/dev/null; then
            say "installing python3-pip and python3-venv"
            apt-get update -qq && apt-get install -y -qq python3-pip python3-venv >/dev/null
        fi
        "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip: install python3-pip"
    fi
}

new_venv() {
    # Built at its final path (a venv cannot be moved), beside the running one;
    # `venv` switches to it only once it works. The venv gets no pip of its own:
    # the host's pip installs into it (--python), and upgrades go through here.
    check_python
    mkdir -p "$OPT"
    venv=$OPT/venv-$(date +%Y%m%d%H%M%S)
    [ ! -e "$venv" ] || venv=$venv-$$
    "$PYTHON" -m venv --without-pip "$venv"
    # Build from a copy: the source may be read-only, and setuptools writes into it.
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    tar -C "$SRC" -cf - --exclude=./.git --exclude=./.venv --exclude=./build \
        --exclude=./dist --exclude='*.egg-info' --exclude=./.mypy_cache \
        --exclude=./.ruff_cache --exclude=./.pytest_cache --exclude=./.hypothesis \
        --exclude=./state --exclude=__pycache__ . | tar -C "$build" -xf -
    set -- --quiet --disable-pip-version-check
    if [ -n "$wheels" ]; then
        set -- "$@" --no-index --find-links "$wheels"
    fi
    # Every dependency at the version the lock file pins.
    set -- "$@" --constraint "$SRC/constraints.txt"
    if ! "$PYTHON" -m pip --python "$venv/bin/python" install "$@" "$build"; then
        rm -rf "$venv"
        die "pip install failed (pip 22.3 or newer is needed); the installed version is unchanged"
    fi
    "$venv/bin/chargepoint" --version >/dev/null
    rm -rf "$build"
    trap - EXIT
}

switch_venv() {
    previous=
    if [ -L "$OPT/venv" ]; then
        previous=$(readlink "$OPT/venv")
    elif [ -e "$OPT/venv" ]; then
        previous=venv-old-$$
        mv "$OPT/venv" "$OPT/$previous"
    fi
    ln -s "$(basename "$venv")" "$OPT/venv.new"
    mv -T "$OPT/venv.new" "$OPT/venv"
    # Keep the one it replaced (a running daemon may still use it); drop older ones.
    for old in "$OPT"/venv-*; do
        case $(basename "$old") in
            "$(basename "$venv")" | "$previous") ;;
            *) rm -rf "$old" ;;
        esac
    done
    cp "$SRC/README.md" "$OPT/README.md"
    say "installed $("$OPT/venv/bin/chargepoint" --version) in $OPT/venv -> $(basename "$venv")"
}

# Releases the daemon installed itself (firmware updates over OCPP, <state>/releases): what
# this script installs runs from now on. The pointers go first; the directories once the
# service no longer runs from them (after its restart, or at uninstall).
forget_releases() {
    rm -f "$STATE/releases/current" "$STATE/releases/trial" "$STATE/releases/trial.started"
}

remove_releases() {
    if [ -d "$STATE/releases" ]; then
        rm -rf "$STATE/releases"
        say "removed the firmware releases installed over OCPP ($STATE/releases)"
    fi
}

install_config() {
    mkdir -p "$ETC"
    if [ -e "$CONFIG" ]; then
        say "keeping $CONFIG"
        return
    fi
    sed -e 's|^state_dir:.*|state_dir: /var/lib/chargepoint|' \
        "$SRC/config/raspberry-pi.yaml" >"$CONFIG.new"
    grep -q '^state_dir:' "$CONFIG.new" || echo 'state_dir: /var/lib/chargepoint' >>"$CONFIG.new"
    chmod 0640 "$CONFIG.new"
    if [ -z "$ROOT" ]; then
        chown "root:$NAME" "$CONFIG.new"  # it holds the CSMS password
    fi
    mv "$CONFIG.new" "$CONFIG"
    say "wrote $CONFIG from config/raspberry-pi.yaml: set the CSMS and the wiring there"
}

install_unit() {
    install_file "$SRC/systemd/$UNIT_NAME" "$UNIT"
}

start_service() {
    config_ok=yes
    if ! "$OPT/venv/bin/chargepoint" check-config --config "$CONFIG" >/dev/null; then
        config_ok=no
        say "warning: $CONFIG does not load (above); fix it, then: systemctl restart $NAME"
    fi
    if [ "$use_systemctl" = no ]; then
        say "not calling systemctl; to start: systemctl daemon-reload && systemctl enable --now $NAME"
    elif [ -n "$ROOT" ]; then
        "$SYSTEMCTL" --root="$ROOT" enable "$UNIT_NAME"
    elif systemd_running; then
        "$SYSTEMCTL" daemon-reload
        "$SYSTEMCTL" enable "$UNIT_NAME"
        if [ "$config_ok" = yes ]; then
            # Starts it, or restarts it on the new venv after an upgrade.
            "$SYSTEMCTL" restart "$UNIT_NAME"
            say "started; see: systemctl status $NAME; journalctl -u $NAME"
        fi
    else
        "$SYSTEMCTL" enable "$UNIT_NAME"  # systemd not running (chroot): starts at boot
    fi
}

do_install() {
    for needed in pyproject.toml constraints.txt README.md "systemd/$UNIT_NAME" \
        systemd/chargepoint.sysusers systemd/60-chargepoint-gpio.rules config/raspberry-pi.yaml; do
        [ -e "$SRC/$needed" ] || die "$SRC is not a chargepoint-firmware source tree ($needed)"
    done
    create_user
    new_venv
    switch_venv
    forget_releases
    install_config
    install_unit
    start_service
    remove_releases
}

# ---------------------------------------------------------------- uninstall

do_uninstall() {
    if [ "$use_systemctl" = yes ] && [ -e "$UNIT" ]; then
        if [ -n "$ROOT" ]; then
            "$SYSTEMCTL" --root="$ROOT" disable "$UNIT_NAME" || true
        elif systemd_running; then
            "$SYSTEMCTL" disable --now "$UNIT_NAME" || true
        else
            "$SYSTEMCTL" disable "$UNIT_NAME" || true
        fi
    fi
    rm -f "$UNIT" "$UDEV_RULE"
    rm -rf "$OPT"
    remove_releases
    if [ "$use_systemctl" = yes ] && systemd_running; then
        "$SYSTEMCTL" daemon-reload
        "$SYSTEMCTL" reset-failed "$UNIT_NAME" 2>/dev/null || true
    fi
    say "removed $OPT and $UNIT"
    if [ "$purge" = yes ]; then
        rm -rf "$ETC" "$STATE" "$LOGS"
        rm -f "$SYSUSERS"  # else the next boot creates the user again
        say "purged $ETC, $STATE and $LOGS"
        if [ -z "$ROOT" ] && getent passwd "$NAME" >/dev/null; then
            userdel "$NAME"
            say "removed the $NAME user"
        fi
    else
        say "kept $ETC and $STATE (--purge removes them)"
    fi
}

case $action in
    install) do_install ;;
    uninstall) do_uninstall ;;
esac
