#!/bin/sh
# Make this Raspberry Pi a boot-time SO-101 teleoperation appliance:
#
#     sudo deploy/install.sh [--with-lerobot]
#
# 1. the system user so101d with its own group, which alone owns the boards' device nodes (not
#    dialout, whose members could drive the follower); you (the sudo user) join the so101d
#    group, so `so101d status` reaches the daemon without sudo after your next login
# 2. /opt/so101d/venv with so101d from this source tree (plus LeRobot with --with-lerobot),
#    and /usr/local/bin/so101d pointing into it
# 3. /etc/so101d/config.toml from config.example.toml, only when there is none
# 4. your LeRobot calibration (~/.cache/huggingface/lerobot/calibration) imported into
#    /var/lib/so101d/calibration, only while that holds none
# 5. udev rules naming the boards /dev/so101_leader and /dev/so101_follower (group so101d,
#    mode 0660), when both are plugged in and their servos' voltages tell them apart (else it
#    says what to run); rules from earlier versions that gave the boards to dialout are moved
#    to the so101d group
# 6. the web dashboard's access token /etc/so101d/web-token (mode 0640, root:so101d), only
#    when there is none; `sudo so101d web-url` prints the address to open with it
# 7. lerobot.service and so101d-web.service installed, enabled and (re)started
#
# Every step checks first, so running it again changes nothing (except updating so101d in
# the venv). deploy/uninstall.sh undoes it.
#
# --root DIR writes everything under DIR and touches nothing on this system: no useradd,
# systemctl or udevadm; the user goes into DIR/etc/passwd and DIR/etc/group. For tests.
set -eu

usage() {
    cat <<'EOF'
usage: install.sh [options]
  --with-lerobot         also install LeRobot (the so101d[lerobot] extra; large, needs PyTorch)
  --source DIR           the so101d source to install (default: the tree this script is in)
  --python PATH          the Python (>= 3.11) for the venv (default: python3)
  --calibration-from DIR import LeRobot calibration from DIR (default: the sudo user's cache)
  --root DIR             install into the staging root DIR; this system stays untouched
  --skip-venv            leave the venv alone and run so101d with --python (which must have it)
  --devices-from FILE    for testing and offline use: the board list for `so101d install-udev`
  -h, --help             this help
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
python=python3
root=
extra='[web]'
skip_venv=false
calibration_from=
devices_from=

while [ $# -gt 0 ]; do
    case $1 in
        --with-lerobot) extra='[web,lerobot]' ;;
        --source) source_dir=${2:?--source needs a directory}; shift ;;
        --python) python=${2:?--python needs a path}; shift ;;
        --calibration-from) calibration_from=${2:?--calibration-from needs a directory}; shift ;;
        --root) root=${2:?--root needs a directory}; shift ;;
        --skip-venv) skip_venv=true ;;
        --devices-from) devices_from=${2:?--devices-from needs a file}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

USER_NAME=so101d
VENV=/opt/so101d/venv
CONFIG=/etc/so101d/config.toml
CALIBRATION=/var/lib/so101d/calibration
RULES=/etc/udev/rules.d/70-so101d.rules
LINK=/usr/local/bin/so101d
TOKEN=/etc/so101d/web-token

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
staging() { [ -n "$root" ]; }
systemd_running() { ! staging && [ -d /run/systemd/system ]; }

so101d() {
    if $skip_venv; then
        "$python" -m so101d "$@"
    else
        "$root$VENV/bin/so101d" "$@"
    fi
}

with_root() {
    if staging; then
        so101d "$@" --root "$root"
    else
        so101d "$@"
    fi
}

# -- 1. the user ---------------------------------------------------------------------------

# The first id from 999 down that the passwd or group file $1 does not use yet.
free_id() {
    awk -F: '{ used[$3] = 1 } END { for (i = 999; i >= 100; i--) if (!(i in used)) { print i; exit } }' "$1"
}

# Add user $2 to the member list of group $1 in the staged group file.
staged_add_member() {
    file=$root/etc/group
    grep -q "^$1:" "$file" || die "group $1 is missing from $file"
    awk -F: -v group="$1" -v user="$2" 'BEGIN { OFS = ":" }
        $1 == group {
            n = split($4, members, ",")
            for (i = 1; i <= n; i++) if (members[i] == user) { print; next }
            $4 = ($4 == "" ? user : $4 "," user)
        }
        { print }' "$file" >"$file.new"
    replace_if_changed "$file"
}

# Drop user $2 from the member list of group $1 in the staged group file.
staged_remove_member() {
    file=$root/etc/group
    awk -F: -v group="$1" -v user="$2" 'BEGIN { OFS = ":" }
        $1 == group {
            n = split($4, members, ","); kept = ""
            for (i = 1; i <= n; i++)
                if (members[i] != user) kept = (kept == "" ? members[i] : kept "," members[i])
            $4 = kept
        }
        { print }' "$file" >"$file.new"
    replace_if_changed "$file"
}

# Move $1.new over $1 if it differs, else drop it (a rerun changes no byte or mtime).
replace_if_changed() {
    if cmp -s "$1" "$1.new"; then rm "$1.new"; else mv "$1.new" "$1"; fi
}

staged_user() {
    mkdir -p "$root/etc"
    touch "$root/etc/passwd" "$root/etc/group"
    if ! grep -q "^$USER_NAME:" "$root/etc/group"; then
        echo "$USER_NAME:x:$(free_id "$root/etc/group"):" >>"$root/etc/group"
    fi
    if ! grep -q "^$USER_NAME:" "$root/etc/passwd"; then
        gid=$(awk -F: -v g="$USER_NAME" '$1 == g { print $3 }' "$root/etc/group")
        uid=$(free_id "$root/etc/passwd")
        echo "$USER_NAME:x:$uid:$gid:so101d teleoperation daemon:/var/lib/so101d:/usr/sbin/nologin" \
            >>"$root/etc/passwd"
    fi
    staged_remove_member dialout "$USER_NAME"  # earlier versions put it there
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        staged_add_member "$USER_NAME" "$SUDO_USER"
    fi
}

host_add_member() {
    if ! id -nG "$2" | tr ' ' '\n' | grep -qx "$1"; then
        usermod -aG "$1" "$2"
        say "added $2 to the group $1"
    fi
}

host_user() {
    if ! getent passwd "$USER_NAME" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /var/lib/so101d \
            --shell /usr/sbin/nologin --comment 'so101d teleoperation daemon' "$USER_NAME"
        say "created the system user $USER_NAME"
    fi
    if id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx dialout; then
        gpasswd --delete "$USER_NAME" dialout >/dev/null
        say "removed $USER_NAME from the group dialout (the boards now belong to $USER_NAME)"
    fi
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        host_add_member "$USER_NAME" "$SUDO_USER"
    fi
}

# -- 2. the venv ---------------------------------------------------------------------------

install_venv() {
    if $skip_venv; then
        say "leaving the venv alone (--skip-venv); running so101d as $python -m so101d"
        return
    fi
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$python is older than Python 3.11 (pass --python)"
    if [ ! -x "$root$VENV/bin/python" ]; then
        say "creating $root$VENV"
        "$python" -m venv "$root$VENV"
    fi
    say "installing so101d$extra from $source_dir into $root$VENV"
    "$root$VENV/bin/pip" install --quiet --disable-pip-version-check "$source_dir$extra"
}

install_link() {
    mkdir -p "$root$(dirname "$LINK")"
    if [ -L "$root$LINK" ] && [ "$(readlink "$root$LINK")" = "$VENV/bin/so101d" ]; then
        return
    fi
    if [ -e "$root$LINK" ]; then
        say "leaving $root$LINK alone (not our link): run so101d as $VENV/bin/so101d"
        return
    fi
    ln -s "$VENV/bin/so101d" "$root$LINK"
}

# -- 3. the config -------------------------------------------------------------------------

install_config() {
    if [ -e "$root$CONFIG" ]; then
        say "keeping $root$CONFIG"
        return
    fi
    install -D -m 0644 "$here/config.example.toml" "$root$CONFIG"
    say "wrote $root$CONFIG (edit it, then check it: so101d config check)"
}

# -- 4. calibration ------------------------------------------------------------------------

lerobot_cache() {
    if [ -n "$calibration_from" ]; then
        echo "$calibration_from"
        return
    fi
    home=$HOME
    if [ -n "${SUDO_USER:-}" ]; then
        home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    fi
    echo "$home/.cache/huggingface/lerobot/calibration"
}

import_calibration() {
    target=$root$CALIBRATION
    from=$(lerobot_cache)
    if [ -d "$target" ] && [ -n "$(find "$target" -name '*.json' -print)" ]; then
        say "keeping the calibration in $target (more: so101d import-calibration --help)"
    elif [ ! -d "$from" ]; then
        say "no LeRobot calibration in $from; calibrate, or import later with so101d import-calibration"
    elif so101d import-calibration --all --from "$from" --to "$target"; then
        staging || chown -R "$USER_NAME:$USER_NAME" /var/lib/so101d
    else
        say "imported no calibration from $from (see above); import later with so101d import-calibration"
    fi
}

# -- 5. udev rules -------------------------------------------------------------------------

# Rules written by earlier versions gave the boards to dialout: give them to our group.
regroup_udev_rules() {
    changed=false
    for rules in "$root$RULES" "$root${RULES%.rules}"-*.rules; do
        if [ -f "$rules" ] && grep -q 'GROUP="dialout"' "$rules"; then
            sed "s/GROUP=\"dialout\"/GROUP=\"$USER_NAME\"/" "$rules" >"$rules.new"
            mv "$rules.new" "$rules"
            say "$rules: the boards now belong to the group $USER_NAME instead of dialout"
            changed=true
        fi
    done
    if $changed && ! staging && command -v udevadm >/dev/null; then
        udevadm control --reload
        udevadm trigger --action=add --subsystem-match=tty
    fi
}

install_udev_rules() {
    regroup_udev_rules
    if [ -e "$root$RULES" ]; then
        say "keeping $root$RULES (to name the boards again: sudo so101d install-udev)"
        return
    fi
    set -- install-udev --by voltage --yes --group "$USER_NAME"
    [ -n "$devices_from" ] && set -- "$@" --devices-from "$devices_from"
    if ! with_root "$@"; then
        say "the boards are not named yet; with both arms plugged in and powered, run:"
        say "    sudo so101d install-udev"
    fi
}

# -- 6. the web token ----------------------------------------------------------------------

install_web_token() {
    if [ -e "$root$TOKEN" ]; then
        say "keeping $root$TOKEN"
        return
    fi
    mkdir -p "$root$(dirname "$TOKEN")"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$root$TOKEN")
    staging || chgrp "$USER_NAME" "$root$TOKEN"
    chmod 0640 "$root$TOKEN"
    say "wrote the dashboard's access token $root$TOKEN (its address: sudo so101d web-url)"
}

# -- 7. the services -----------------------------------------------------------------------

install_service() {
    with_root install-service --venv "$VENV" --user "$USER_NAME" --config "$CONFIG"
    if systemd_running; then
        systemctl restart lerobot.service so101d-web.service
        say "lerobot.service is running; follow it with: journalctl -u lerobot -f"
        say "so101d-web.service is running; open the address that 'sudo so101d web-url' prints"
    elif ! staging; then
        say "systemd is not running here: the service starts at the next boot"
    fi
}

if staging; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
    say "installing into the staging root $root"
else
    [ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0"
fi

if staging; then staged_user; else host_user; fi
install_venv
install_link
install_config
import_calibration
install_udev_rules
install_web_token
install_service
say "done"
