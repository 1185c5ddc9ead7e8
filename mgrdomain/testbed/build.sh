#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the manager domain and
# its test client, and the manager's 16 MiB disk (zeros: a blank disk, which
# the manager formats on its first start).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/mgrdomain" "$TESTBED_STAGE/mgrclient"
rm -f "$TESTBED_STAGE/mgr.img"
truncate -s 16M "$TESTBED_STAGE/mgr.img"
