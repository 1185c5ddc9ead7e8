#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the manager domain,
# its test client and dom0's xenvtpm, and the manager's 16 MiB disk
# (zeros: a blank disk, which the manager formats on its first start).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/mgrdomain" "$TESTBED_STAGE/mgrclient"
# dom0's xenvtpm, the administrator's tool for the groups (groups.sh).
(cd "$top" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$TESTBED_STAGE/xenvtpm" ./cmd/xenvtpm)
gzip -9f "$TESTBED_STAGE/xenvtpm"
rm -f "$TESTBED_STAGE/mgr.img"
truncate -s 16M "$TESTBED_STAGE/mgr.img"
