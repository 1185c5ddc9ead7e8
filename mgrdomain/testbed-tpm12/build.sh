#!/usr/bin/env bash
# The TPM 1.2 run builds what the TPM 2.0 scenario builds and borrows its
# test client's config and helpers.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/../testbed/build.sh"
cp "$here/../testbed/client.cfg" "$here/../testbed/mgrlib.sh" "$here/../testbed/groups.sh" "$TESTBED_STAGE/"
