#!/usr/bin/env bash
# The churn run builds what the scale scenario builds.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/../testbed-scale/build.sh"
cp "$here/../testbed-scale/mgr.cfg" "$TESTBED_STAGE/"
