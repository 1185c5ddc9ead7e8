#!/usr/bin/env bash
# Runs on the host before the test bed boots (also for ../testbed-tpm12):
# builds the tisxen image, the Linux guest of the coexistence test (its init
# and the static tpmloop binary), and the
# direct-socket baseline: the same raw GetRandom and PCR_Extend commands sent
# straight to a swtpm of each family on this host (socketbench, as
# build/qemu-tis does), for the latency ratios dom0 prints.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../../.." && pwd)
stage=$TESTBED_STAGE

# Shared scenario files (already there when this is ../testbed itself).
cp "$here"/tisxen-checks.sh "$here"/*.cfg "$stage/"

make -s -C "$top" OUT="$stage" "$stage/tisxen"
cp "$TESTBED_VMLINUX" "$stage/vmlinux"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tisxen-build.XXXXXX")
swpid=""
trap '[ -z "$swpid" ] || kill "$swpid" 2>/dev/null; rm -rf "$tmp"' EXIT
(cd "$top" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o "$tmp/tpmloop" ./build/tisxen/tpmloop &&
	go build -o "$tmp/socketbench" ./build/qemu-tis/socketbench)
"$TESTBED_PREPARE" guest-initramfs --init "$here/guest-init" --out "$stage/guest.cpio" --file "$tmp/tpmloop:/bin/tpmloop"

for fam in 2.0 1.2; do
	d=$tmp/swtpm-$fam
	mkdir -p "$d/state"
	flag=() sb=()
	[ "$fam" = 1.2 ] || { flag=(--tpm2); sb=(-tpm2); }
	swtpm socket "${flag[@]}" --tpmstate dir="$d/state" \
		--server type=unixio,path="$d/data.sock" --ctrl type=unixio,path="$d/ctrl.sock" \
		--flags not-need-init,startup-clear --pid file="$d/pid" -d
	for _ in $(seq 50); do [ -s "$d/pid" ] && [ -S "$d/data.sock" ] && break; sleep 0.1; done
	swpid=$(cat "$d/pid")
	"$tmp/socketbench" -socket "$d/data.sock" "${sb[@]}" >"$stage/socket-$fam.txt"
	kill "$swpid"
	swpid=""
done
cat "$stage"/socket-*.txt
