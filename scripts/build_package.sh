#!/usr/bin/env bash
# Build the standalone one-folder app in dist/busapp/ and check it: `make package` runs this.
#
#   scripts/build_package.sh            # build + self-test + size check
#   PYTHON=/path/to/python scripts/build_package.sh
#
# Uses .venv (create it with `make test`, or `pip install -e ".[dev]"`; the build needs only the
# runtime dependencies + pyinstaller). The bundle is tested as a user runs it: offscreen, from a
# read-only copy, with the self-test's exit status deciding. Takes ~1 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
MAX_MB=${BUSAPP_MAX_BUNDLE_MB:-200}  # issue 27; docs/packaging.md lists what takes the space
DIST=dist/busapp
WORK=build/pyinstaller   # not build/ itself: build/train holds training outputs

if ! "$PYTHON" -m PyInstaller --version >/dev/null 2>&1; then
    echo "PyInstaller is not installed for $PYTHON: run 'make test' (or pip install -e '.[dev]') first." >&2
    exit 2
fi

# Qt's xcb platform plugin links these; PyInstaller bundles them only if the build machine has them.
# Without them the bundle still works offscreen (self-test) but needs them on the target desktop.
if command -v ldconfig >/dev/null 2>&1; then
    for lib in libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-cursor.so.0; do
        ldconfig -p | grep -q "$lib" || echo "WARNING: $lib not on this machine, so not bundled" \
            "(apt-get install -y libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0)" >&2
    done
fi

echo "== PyInstaller $("$PYTHON" -m PyInstaller --version), $("$PYTHON" -V)"
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath "$WORK" --distpath dist build.spec
build_s=$(( $(date +%s) - start ))
# Readable by every user of a shared install, writable by none (PyInstaller keeps the source
# files' modes, and some are 0600).
chmod -R a+rX,go-w "$DIST"

echo "== Self-test of the bundle (offscreen, from a read-only copy)"
# A read-only copy proves the app never writes into its install folder.
ro=$(mktemp -d)
trap 'chmod -R u+w "$ro" 2>/dev/null; rm -rf "$ro"' EXIT
cp -a "$DIST" "$ro/busapp"
chmod -R a-w "$ro/busapp"
before=$(cd "$ro/busapp" && find . -printf '%P %s %T@\n' | sort | sha256sum)
t0=$EPOCHREALTIME
QT_QPA_PLATFORM=offscreen "$ro/busapp/busapp" --self-test
selftest_s=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $t0 }")
"$ro/busapp/busapp" --version
after=$(cd "$ro/busapp" && find . -printf '%P %s %T@\n' | sort | sha256sum)
if [ "$before" != "$after" ]; then
    echo "FAIL: the bundle changed its own folder while running" >&2
    exit 1
fi

size_mb=$(du -sm "$DIST" | cut -f1)
echo "== dist/busapp: ${size_mb} MB (limit ${MAX_MB} MB); build ${build_s} s; self-test ${selftest_s} s"
if [ "$size_mb" -gt "$MAX_MB" ]; then
    echo "FAIL: the bundle is larger than ${MAX_MB} MB: did TensorFlow or another excluded package get in," \
        "or was it built without strip/cc (see the build.spec warnings above)?" >&2
    find "$DIST" -type f -size +2M -printf '%s %P\n' | sort -n | tail -12 \
        | awk '{ printf "%8.1f MB  %s\n", $1 / 1e6, $2 }' >&2
    exit 1
fi
echo "OK: run it with $DIST/busapp (Linux desktop entry: $DIST/install-linux.sh)"
