#!/bin/sh
# The system libraries Qt's window plugin (xcb) needs on Linux, which a bare Debian or Ubuntu lacks.
# Installs the missing ones with apt-get when it can (root, or sudo); otherwise prints the exact
# command and exits 1. Elsewhere (macOS, Windows) it does nothing. Run by `make run`.
#
#   sh scripts/system_libs.sh [VENV]      # VENV (default .venv): where PySide6 is, if installed yet
#   BUSAPP_SYSTEM_LIBS=check sh scripts/system_libs.sh   # only check and print the command
set -u
[ "$(uname -s)" = Linux ] || exit 0
VENV=${1:-.venv}

# soname -> Debian/Ubuntu package (Qt 6's xcb plugin, QtGui and QtDBus; from `ldd libqxcb.so`)
MAP='libxcb-cursor.so.0 libxcb-cursor0
libxcb-icccm.so.4 libxcb-icccm4
libxcb-keysyms.so.1 libxcb-keysyms1
libxcb-image.so.0 libxcb-image0
libxcb-randr.so.0 libxcb-randr0
libxcb-render-util.so.0 libxcb-render-util0
libxcb-render.so.0 libxcb-render0
libxcb-shape.so.0 libxcb-shape0
libxcb-shm.so.0 libxcb-shm0
libxcb-sync.so.1 libxcb-sync1
libxcb-xfixes.so.0 libxcb-xfixes0
libxcb-xkb.so.1 libxcb-xkb1
libxcb-util.so.1 libxcb-util1
libxcb.so.1 libxcb1
libX11-xcb.so.1 libx11-xcb1
libX11.so.6 libx11-6
libxkbcommon-x11.so.0 libxkbcommon-x11-0
libxkbcommon.so.0 libxkbcommon0
libEGL.so.1 libegl1
libGL.so.1 libgl1
libfontconfig.so.1 libfontconfig1
libfreetype.so.6 libfreetype6
libdbus-1.so.3 libdbus-1-3
libglib-2.0.so.0 libglib2.0-0
libgthread-2.0.so.0 libglib2.0-0'

have() {  # is a shared library with this soname on the loader's path?
    /sbin/ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 " && return 0
    ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 "
}

missing_libs=$(echo "$MAP" | while read -r so pkg; do have "$so" || echo "$so"; done)
# Once PySide6 is installed, ldd of its plugin names anything this list does not know.
plugin=$(ls "$VENV"/lib/python3*/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so 2>/dev/null | head -n 1)
if [ -n "$plugin" ]; then
    extra=$(ldd "$plugin" 2>/dev/null | awk '/not found/ {print $1}')
    missing_libs=$(printf '%s\n%s\n' "$missing_libs" "$extra" | grep . | sort -u)
fi
[ -z "$missing_libs" ] && exit 0

packages=""
unknown=""
for so in $missing_libs; do
    pkg=$(echo "$MAP" | awk -v so="$so" '$1 == so {print $2}')
    if [ -n "$pkg" ]; then
        case " $packages " in *" $pkg "*) ;; *) packages="$packages $pkg" ;; esac
    else
        unknown="$unknown $so"
    fi
done
packages=${packages# }

echo "busapp: Qt needs system libraries this machine lacks:$(echo $missing_libs | sed 's/^/ /')" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "busapp: install the packages that provide them with your system's package manager, then run make run again." >&2
    exit 1
fi
if [ -n "$unknown" ]; then
    echo "busapp: no package known for$unknown; find it with: apt-file search <library>" >&2
fi
[ -z "$packages" ] && exit 1
command="apt-get update && apt-get install -y --no-install-recommends $packages"
if [ "${BUSAPP_SYSTEM_LIBS:-install}" != check ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "busapp: installing $packages" >&2
        sh -c "$command" && exit 0
    elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
        echo "busapp: installing $packages (sudo)" >&2
        sudo sh -c "$command" && exit 0
    fi
fi
echo "busapp: run this, then make run again:" >&2
echo "    sudo sh -c '$command'" >&2
exit 1
