#!/usr/bin/env sh
# Install this busapp bundle (the folder this script is in) for one user or system-wide.
#   ./install-linux.sh            -> ~/.local/opt/busapp, ~/.local/bin/busapp, menu entry + icon
#   sudo ./install-linux.sh /opt  -> /opt/busapp, /usr/local/bin/busapp, menu entry + icon for all users
# The installed folder is only read at run time, so a root-owned read-only /opt/busapp is fine.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then
    PREFIX=${1:-/opt}; BIN=/usr/local/bin; SHARE=/usr/local/share
else
    PREFIX=${1:-$HOME/.local/opt}; BIN=$HOME/.local/bin; SHARE=${XDG_DATA_HOME:-$HOME/.local/share}
fi
DEST=$PREFIX/busapp
if [ "$HERE" != "$DEST" ]; then
    mkdir -p "$PREFIX"
    rm -rf "$DEST.new"
    cp -a "$HERE" "$DEST.new"
    rm -rf "$DEST"
    mv "$DEST.new" "$DEST"
fi
chmod -R a+rX,go-w "$DEST"
mkdir -p "$BIN" "$SHARE/applications" "$SHARE/icons/hicolor/scalable/apps" "$SHARE/icons/hicolor/256x256/apps"
ln -sf "$DEST/busapp" "$BIN/busapp"
ICONS=$DEST/_internal/resources/icons
[ -f "$ICONS/busapp.svg" ] && cp "$ICONS/busapp.svg" "$SHARE/icons/hicolor/scalable/apps/busapp.svg"
[ -f "$ICONS/busapp.png" ] && cp "$ICONS/busapp.png" "$SHARE/icons/hicolor/256x256/apps/busapp.png"
sed "s|^Exec=busapp|Exec=$DEST/busapp|; s|^TryExec=busapp|TryExec=$DEST/busapp|" "$DEST/busapp.desktop" \
    > "$SHARE/applications/busapp.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$SHARE/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q "$SHARE/icons/hicolor" || true
echo "Installed busapp in $DEST. Check it with: $BIN/busapp --self-test"
