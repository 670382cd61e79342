#!/bin/sh
# Optional tools the test suite uses when present: dciodvfy (Debian/Ubuntu: dicom3tools), David
# Clunie's DICOM IOD validator, which checks busapp's DICOM exports. Installed with apt-get when it
# can be (root, or sudo without a password); otherwise a note, and that one test is skipped.
# Never fails: the suite runs either way. Run by `make test`.
set -u
command -v dciodvfy >/dev/null 2>&1 && exit 0
[ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1 || exit 0
command="apt-get install -y --no-install-recommends dicom3tools || { apt-get update && apt-get install -y --no-install-recommends dicom3tools; }"
# At most 5 minutes: a machine whose package mirror cannot be reached must not hold the tests up.
limit=""; command -v timeout >/dev/null 2>&1 && limit="timeout 300"
if [ "$(id -u)" = 0 ]; then
    $limit sh -c "$command" >/dev/null 2>&1 && exit 0
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    $limit sudo sh -c "$command" >/dev/null 2>&1 && exit 0
fi
echo "busapp: dciodvfy not found, so the DICOM validator test is skipped (sudo apt-get install dicom3tools)" >&2
exit 0
