#!/usr/bin/env bash
# The scale run builds what the manager's scenario builds and borrows its
# helpers.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/../testbed/build.sh"
cp "$here/../testbed/mgrlib.sh" "$TESTBED_STAGE/"
