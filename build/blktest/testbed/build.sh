#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the blktest image and
# its 8 MiB backing file (zeros, with a marker at byte 20480 for the domain
# to read) into the files dom0 sees under /test.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/blktest"
img=$TESTBED_STAGE/blktest.img
truncate -s 8M "$img"
printf 'WRITTEN-BY-DOM0' | dd of="$img" bs=512 seek=40 conv=notrunc status=none
