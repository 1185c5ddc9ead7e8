#!/usr/bin/env bash
# mgrdomain/testbed-scale's scenario with its 872-device client
# (/test/scale-full).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/../testbed-scale/build.sh"
cp "$here/../testbed-scale/mgr.cfg" "$TESTBED_STAGE/"
cp "$here/../testbed-scale/dom0-test.sh" "$TESTBED_STAGE/scale.sh"
touch "$TESTBED_STAGE/scale-full"
