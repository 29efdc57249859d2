#!/usr/bin/env bash
# `make install` / `make uninstall`: crid as a system service.
#
#   $PREFIX/lib/crid/venv           a venv with crid and its pinned dependencies (tools/constraints.txt)
#   $PREFIX/bin/crid, crid-runtime  wrappers that run the venv's python (relocatable: they find the
#                                   venv relative to themselves, so a DESTDIR staging tree runs too)
#   $UNITDIR/crid.service           the systemd unit, ExecStart pointing at $PREFIX/bin/crid
#   $SYSCONFDIR/crid/crid.toml      the default configuration, never overwritten once there
#   $PREFIX/share/doc/crid/         README.md and docs/
#
# Usage: tools/install.sh install|uninstall   (PREFIX, DESTDIR, SYSCONFDIR, UNITDIR from the env)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
PYTHON=${PYTHON:-python3}
lib=$DESTDIR$PREFIX/lib/crid
bin=$DESTDIR$PREFIX/bin
doc=$DESTDIR$PREFIX/share/doc/crid

wrapper() {  # NAME COMMAND...: a shell script that runs the venv's python with COMMAND
  local name=$1; shift
  cat >"$bin/$name.tmp" <<WRAP
#!/bin/sh
# Installed by crid's make install: runs $name from $PREFIX/lib/crid/venv.
here=\$(dirname "\$(readlink -f "\$0")")
exec "\$here/../lib/crid/venv/bin/python" $* "\$@"
WRAP
  chmod 755 "$bin/$name.tmp"
  mv -f "$bin/$name.tmp" "$bin/$name"
}

install_all() {
  install -d "$bin" "$lib" "$doc" "$DESTDIR$UNITDIR" "$DESTDIR$SYSCONFDIR/crid/crid.d"
  # A fresh venv each time: an upgrade never mixes two releases' files.
  rm -rf "$lib/venv.new"
  "$PYTHON" -m venv "$lib/venv.new"
  "$lib/venv.new/bin/python" -m pip install -q --disable-pip-version-check \
    -c tools/constraints.txt --no-warn-script-location .
  rm -rf "$lib/venv.old"
  [ ! -d "$lib/venv" ] || mv "$lib/venv" "$lib/venv.old"
  mv "$lib/venv.new" "$lib/venv"
  rm -rf "$lib/venv.old"
  # The venv moved: its own scripts' #! lines name venv.new; the wrappers do not use them.
  wrapper crid "-P -m crid"  # -P: never the working directory's crid (a checkout)
  wrapper crid-runtime "\"\$here/../lib/crid/venv/bin/crid-runtime\""
  sed "s|/usr/local/bin/crid|$PREFIX/bin/crid|; s|/usr/local/share/doc/crid|$PREFIX/share/doc/crid|" \
    deploy/crid.service >"$DESTDIR$UNITDIR/crid.service"
  chmod 644 "$DESTDIR$UNITDIR/crid.service"
  conf=$DESTDIR$SYSCONFDIR/crid/crid.toml
  [ -e "$conf" ] || install -m 644 deploy/crid.toml "$conf"
  install -m 644 README.md docs/*.md "$doc/"
  echo "installed crid in $DESTDIR$PREFIX (unit $DESTDIR$UNITDIR/crid.service," \
       "config $conf); next: systemctl daemon-reload && systemctl enable --now crid"
}

uninstall_all() {
  rm -f "$bin/crid" "$bin/crid-runtime" "$DESTDIR$UNITDIR/crid.service"
  rm -rf "$lib" "$doc"
  # Configuration and state stay, as a Debian package's conffiles and /var/lib do.
  echo "removed crid from $DESTDIR$PREFIX; kept $DESTDIR$SYSCONFDIR/crid, /var/lib/crid"
}

case "${1:-}" in
  install) install_all ;;
  uninstall) uninstall_all ;;
  *) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
