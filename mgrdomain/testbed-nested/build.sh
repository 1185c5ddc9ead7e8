#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds a vTPM domain (the
# nested manager's TPM), the manager, its test client, and the manager's
# blank 4 MiB disk.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/vtpmdomain" "$TESTBED_STAGE/mgrdomain" "$TESTBED_STAGE/mgrclient"
cp "$top/mgrdomain/testbed/client.cfg" "$TESTBED_STAGE/client.cfg"
rm -f "$TESTBED_STAGE/mgr.img"
truncate -s 4M "$TESTBED_STAGE/mgr.img"
