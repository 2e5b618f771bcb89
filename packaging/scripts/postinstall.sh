#!/bin/sh
# hotdrop postinstall: the service user, its state folder, and the unit enabled but not
# started: the shipped config has no destination.url yet, so `hotdrop run` would exit 78.
# deb: $1 = configure, $2 = the version upgraded from (empty on a first install).
# rpm: $1 = 1 on install, 2 on upgrade.
set -e

if ! getent group hotdrop >/dev/null; then
  groupadd --system hotdrop
fi
if ! getent passwd hotdrop >/dev/null; then
  useradd --system --gid hotdrop --home-dir /var/lib/hotdrop --no-create-home \
    --shell /usr/sbin/nologin --comment "hotdrop delivery daemon" hotdrop
fi
chown hotdrop:hotdrop /var/lib/hotdrop
chmod 0750 /var/lib/hotdrop

upgrade=false
case "$1" in
  configure) [ -n "$2" ] && upgrade=true ;;
  2) upgrade=true ;;
esac

if command -v systemctl >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
  # enable works offline too (it only makes the wants/ link), so images built without a
  # running systemd still start hotdrop at boot once configured.
  systemctl enable hotdrop.service >/dev/null 2>&1 || true
  if $upgrade && [ -d /run/systemd/system ]; then
    # A running daemon picks up the new binary; a stopped one stays stopped.
    systemctl try-restart hotdrop.service || true
  fi
fi

if ! $upgrade; then
  cat <<'MSG'
hotdrop is installed and enabled, not started. To configure it:
  1. edit /etc/hotdrop/hotdrop.toml: destination.url, watch.root, identity_file
  2. hotdrop trust           (pins the server's host key after you compare it)
  3. hotdrop check --connect
  4. systemctl start hotdrop
MSG
fi
exit 0
