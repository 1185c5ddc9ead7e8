#!/usr/bin/env bash
# The TPM 1.2 run uses the TPM 2.0 scenario's files and build unchanged.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/../testbed/build.sh"
