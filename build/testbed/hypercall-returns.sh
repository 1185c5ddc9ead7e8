#!/usr/bin/env bash
# hypercall-returns.sh DIR: for each of our Go images in DIR (a file whose
# symbols include the board's hypercallPage), write IMAGE.hypercall-returns
# beside it: the address of the instruction after each VMCALL or VMMCALL
# the image runs, one hex number a line, for dom0's testbed_fault. Those
# are pollIdle's two CLIs and the ret of each 32-byte stub of Xen's
# hypercall page (mov eax, VMCALL or VMMCALL, ret), which the board puts at
# the first page boundary in hypercallPage. The test bed's nested SVM has
# triple-faulted Go domains at exactly these instructions (README.md).
set -euo pipefail
for img in "$1"/*; do
	[ -f "$img" ] && [ "${img%.hypercall-returns}" = "$img" ] || continue
	page=$(go tool nm "$img" 2>/dev/null |
		awk '$3 == "github.com/xenvtpm/xenvtpm/board/xen/pvh.hypercallPage" { print $1 }') || true
	[ -n "$page" ] || continue
	cli=$(go tool objdump -s 'board/xen/pvh\.pollIdle' "$img" | awk '$4 == "CLI" { print $2 }')
	[ "$(echo "$cli" | wc -w)" = 2 ] ||
		{ echo "hypercall-returns.sh: cannot find pollIdle's two CLIs in $img (found: $cli)" >&2; exit 1; }
	{
		for a in $cli; do printf '%x\n' "$a"; done
		base=$(((0x$page + 0xfff) & ~0xfff))
		for ((k = 0; k < 128; k++)); do printf '%x\n' $((base + 32 * k + 8)); done
	} >"$img.hypercall-returns"
done
