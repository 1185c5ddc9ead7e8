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
# The manager image's hypercall returns, for mgr_lost (mgrlib.sh): the
# instruction after each VMCALL or VMMCALL the domain runs. Those are
# pollIdle's two CLIs and the ret of each 32-byte stub of Xen's hypercall
# page (mov eax, VMCALL or VMMCALL, ret), which the board puts at the
# first page boundary in hypercallPage.
img="$TESTBED_STAGE/mgrdomain"
cli=$(go tool objdump -s 'board/xen/pvh\.pollIdle' "$img" | awk '$4 == "CLI" { print $2 }')
page=$(go tool nm "$img" | awk '$3 == "github.com/xenvtpm/xenvtpm/board/xen/pvh.hypercallPage" { print $1 }')
[ "$(echo "$cli" | wc -w)" = 2 ] && [ -n "$page" ] ||
	{ echo "build.sh: cannot find pollIdle's CLIs ($cli) or hypercallPage ($page) in $img" >&2; exit 1; }
{
	for a in $cli; do printf '%x\n' "$a"; done
	base=$(((0x$page + 0xfff) & ~0xfff))
	for ((k = 0; k < 128; k++)); do printf '%x\n' $((base + 32 * k + 8)); done
} >"$TESTBED_STAGE/mgr-hypercall-returns"
