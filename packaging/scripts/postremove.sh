#!/bin/sh
# hotdrop postremove. On purge (deb only) the journal in /var/lib/hotdrop goes too; dpkg
# removes the conffile itself. The hotdrop user stays, as Debian advises for system users:
# files it owns elsewhere (drop folders) would otherwise pass to whoever reuses its UID.
# deb: $1 = remove, purge, upgrade, ...; rpm: $1 = 0 on erase, 1 on upgrade.
set -e
case "$1" in
  purge)
    rm -rf /var/lib/hotdrop
    # Left by `hotdrop service install` or `systemctl edit`, not by the package.
    rm -rf /etc/systemd/system/hotdrop.service.d
    ;;
esac
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload || true
fi
exit 0
