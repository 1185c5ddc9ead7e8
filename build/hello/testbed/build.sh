#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the hello image into the
# files dom0 sees under /test.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/hello"
