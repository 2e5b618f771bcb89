#!/bin/sh
# hotdrop preremove: stop and disable the service when the package goes away (not on upgrade).
# deb: $1 = remove, upgrade, deconfigure or failed-upgrade. rpm: $1 = 0 on erase, 1 on upgrade.
set -e
case "$1" in
  remove|deconfigure|0)
    if command -v systemctl >/dev/null 2>&1; then
      if [ -d /run/systemd/system ]; then
        systemctl stop hotdrop.service || true
      fi
      systemctl disable hotdrop.service >/dev/null 2>&1 || true
    fi
    ;;
esac
exit 0
