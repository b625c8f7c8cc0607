#!/bin/sh
# Undo deploy/install.sh:
#
#     sudo deploy/uninstall.sh [--purge]
#
# Stops and removes lerobot.service and so101d-web.service, the udev rules, /opt/so101d, /usr/local/bin/so101d and
# the so101d user. Keeps the config (/etc/so101d) and the calibration (/var/lib/so101d)
# unless --purge. --root DIR undoes an install into the staging root DIR.
set -eu

usage() {
    cat <<'EOF'
usage: uninstall.sh [--purge] [--root DIR]
  --purge     also delete /etc/so101d (config) and /var/lib/so101d (calibration)
  --root DIR  uninstall from the staging root DIR; this system stays untouched
EOF
}

root=
purge=false
while [ $# -gt 0 ]; do
    case $1 in
        --purge) purge=true ;;
        --root) root=${2:?--root needs a directory}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

USER_NAME=so101d
UNITS="lerobot.service so101d-web.service"
UNIT_DIR=/etc/systemd/system
LINK=/usr/local/bin/so101d

say() { printf 'uninstall.sh: %s\n' "$*"; }
staging() { [ -n "$root" ]; }
systemd_running() { ! staging && [ -d /run/systemd/system ]; }

remove() {
    for path in "$@"; do
        if [ -e "$path" ] || [ -L "$path" ]; then
            rm -rf "$path"
            say "removed $path"
        fi
    done
}

remove_service() {
    for unit in $UNITS; do
        if systemd_running && [ -e "$UNIT_DIR/$unit" ]; then
            systemctl disable --now "$unit"
        fi
        remove "$root$UNIT_DIR/$unit"
    done
    if systemd_running; then
        systemctl daemon-reload
        # shellcheck disable=SC2086 # one word per unit
        systemctl reset-failed $UNITS 2>/dev/null || true
    fi
}

remove_udev_rules() {
    remove "$root"/etc/udev/rules.d/70-so101d.rules "$root"/etc/udev/rules.d/70-so101d-*.rules
    if ! staging && command -v udevadm >/dev/null; then
        udevadm control --reload
        udevadm trigger --action=add --subsystem-match=tty
    fi
}

remove_program() {
    if [ -L "$root$LINK" ] && [ "$(readlink "$root$LINK")" = /opt/so101d/venv/bin/so101d ]; then
        remove "$root$LINK"
    fi
    remove "$root/opt/so101d"
}

# Drop the user's passwd line, its group's line, and its name from every member list.
staged_remove_user() {
    changed=
    for file in "$root/etc/passwd" "$root/etc/group"; do
        [ -f "$file" ] || continue
        awk -F: -v user="$USER_NAME" 'BEGIN { OFS = ":" }
            $1 == user { next }
            FILENAME ~ /group$/ {
                n = split($4, members, ","); kept = ""
                for (i = 1; i <= n; i++)
                    if (members[i] != user) kept = (kept == "" ? members[i] : kept "," members[i])
                $4 = kept
            }
            { print }' "$file" >"$file.new"
        if cmp -s "$file" "$file.new"; then
            rm "$file.new"
        else
            mv "$file.new" "$file"
            changed="$changed $file"
        fi
    done
    if [ -n "$changed" ]; then
        say "removed the user and group $USER_NAME (from$changed)"
    fi
}

remove_user() {
    if staging; then
        staged_remove_user
    elif getent passwd "$USER_NAME" >/dev/null; then
        userdel "$USER_NAME"
        removed="the user $USER_NAME"
        if getent group "$USER_NAME" >/dev/null; then
            groupdel "$USER_NAME"
            removed="the user and group $USER_NAME"
        fi
        say "removed $removed"
    fi
}

if staging; then
    [ -d "$root" ] || { say "no staging root $root"; exit 1; }
else
    [ "$(id -u)" -eq 0 ] || { say "run it as root: sudo $0"; exit 1; }
fi

remove_service
remove_udev_rules
remove_program
remove_user
if $purge; then
    remove "$root/etc/so101d" "$root/var/lib/so101d"
else
    say "kept the config ($root/etc/so101d) and the calibration ($root/var/lib/so101d); --purge removes them"
fi
