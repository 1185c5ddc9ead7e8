#!/usr/bin/env bash
# Builds what ../testbed-persist builds and takes its guest, vTPM and test;
# only the manager's config (mgr.cfg, with the TPM 1.2 owner's secrets) is
# this scenario's own.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/../testbed-persist/build.sh"
cp "$here/../testbed-persist/guest.cfg" "$here/../testbed-persist/vtpm.cfg" "$TESTBED_STAGE/"
cp "$here/../testbed-persist/dom0-test.sh" "$TESTBED_STAGE/persist-dom0-test.sh"
