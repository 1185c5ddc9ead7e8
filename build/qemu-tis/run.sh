#!/usr/bin/env bash
# Proof of drivers/tpmtis on plain QEMU (no Xen): boots the qemu-tis tamago
# image on `qemu-system-x86_64 -accel tcg -M q35,pit=off -device tpm-tis`
# backed by swtpm, once with a TPM 2.0 and once with a TPM 1.2, and checks
# the console. Before each boot the same swtpm process is timed directly over
# its data socket with the same raw commands, for the latency ratio.
#
# Usage: build/qemu-tis/run.sh            (from anywhere inside the repo)
#   KEEP=1      keep the work directory (logs, swtpm state)
#   MODES="tpm2 tpm12"  which families to run (default both)
#   TIMEOUT=300 seconds allowed per QEMU run
#
# Exit status: 0 pass, 1 failure (the console tail is printed). When the
# tamago toolchain, QEMU or swtpm is missing it prints "SKIP: <why>" and exits
# with $SKIP_EXIT (default 0; build/test-all.sh counts 3 as skipped).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

MODES=${MODES:-"tpm2 tpm12"}
TIMEOUT=${TIMEOUT:-300}

skip() { echo "SKIP: $*"; exit "${SKIP_EXIT:-0}"; }
fail() { echo "FAIL: $*"; exit 1; }

# --- prerequisites ---------------------------------------------------------

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v swtpm >/dev/null || need_pkgs+=(swtpm swtpm-tools)
if ((${#need_pkgs[@]})); then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing ${need_pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null 2>&1; }
	fi
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
	command -v swtpm >/dev/null || skip "swtpm not installed"
fi
command -v go >/dev/null || skip "go not in PATH"

# The tamago toolchain `go tool tamago` would use; it must already be built
# (the tool would otherwise try to clone it from the network).
tver=$(go list -m -f '{{.Version}}' github.com/usbarmory/tamago 2>/dev/null) || skip "tamago module not resolvable"
tgo="${XDG_CACHE_HOME:-$HOME/.cache}/tamago-go/tamago-go${tver#v}/bin/go"
[ -x "$tgo" ] && "$tgo" version >/dev/null 2>&1 || skip "tamago toolchain not built ($tgo)"
# `go tool tamago` must be built for the host, so resolve it without GOOS set.
tamago=$(go tool -n tamago 2>/dev/null) || skip "go tool tamago unavailable"

work=$(mktemp -d -t qemu-tis.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "building image and host tool in $work"
GOOS=tamago GOARCH=amd64 GOOSPKG=github.com/usbarmory/tamago \
	"$tamago" build -ldflags "-T 0x10010000 -R 0x1000" -o "$work/qemu-tis.elf" ./build/qemu-tis ||
	fail "image build"
go build -o "$work/socketbench" ./build/qemu-tis/socketbench || fail "socketbench build"

# --- one family ------------------------------------------------------------

# field NAME KEY FILE: value of KEY=... on the first line starting with NAME.
field() { awk -v n="$1" -v k="$2" 'index($0, n) { for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2 && kv[1] == k) { print kv[2]; exit } }' "$3"; }

run_mode() {
	local mode=$1 flag="" family
	case $mode in
	tpm2) flag=--tpm2 family=2.0 ;;
	tpm12) family=1.2 ;;
	*) fail "unknown mode $mode" ;;
	esac
	local d="$work/$mode"
	mkdir -p "$d/state"
	swtpm socket $flag --tpmstate dir="$d/state" \
		--server type=unixio,path="$d/data.sock" --ctrl type=unixio,path="$d/ctrl.sock" \
		--flags not-need-init,startup-clear --pid file="$d/swtpm.pid" \
		--log file="$d/swtpm.log",level=1 -d || fail "$mode: swtpm did not start"
	for _ in $(seq 50); do [ -S "$d/ctrl.sock" ] && [ -s "$d/swtpm.pid" ] && break; sleep 0.1; done
	pids+=("$(cat "$d/swtpm.pid")")

	# Baseline: the same swtpm, straight over its data socket, before QEMU
	# takes the TPM over through the control channel.
	local sockflag=""; [ "$mode" = tpm2 ] && sockflag=-tpm2
	"$work/socketbench" -socket "$d/data.sock" $sockflag >"$d/socket.txt" 2>&1 ||
		{ cat "$d/socket.txt"; fail "$mode: direct socket benchmark"; }

	local console="$d/console.log"
	timeout "$TIMEOUT" qemu-system-x86_64 -M q35,pit=off -accel tcg -cpu max -m 512M \
		-display none -monitor none -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-chardev socket,id=chrtpm,path="$d/ctrl.sock" \
		-tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
		-kernel "$work/qemu-tis.elf" 2>&1 </dev/null |
		while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done >"$console"
	local rc=${PIPESTATUS[0]}

	local why=""
	# isa-debug-exit: exit(0) in the guest is status 1, exit(1) is 3.
	case $rc in
	1) ;;
	124) why="QEMU timed out after ${TIMEOUT}s" ;;
	*) why="QEMU exit status $rc" ;;
	esac
	grep -q " TIS-FAMILY $family\$" "$console" || why="$why; family $family not detected"
	for c in open-locality-0 open-locality-2 startup getrandom pcr-read extend-pcr16-locality-0 \
		extend-pcr21-refused-at-locality-0 extend-pcr21-at-locality-2 getrandom-wide-fifo coexist locality-4-not-granted no-tpm-detected; do
		grep -q " CHECK $c OK\$" "$console" || why="$why; check $c"
	done
	if [ "$mode" = tpm2 ]; then
		for c in createprimary quote quote-verify; do
			grep -q " CHECK $c OK\$" "$console" || why="$why; check $c"
		done
	else
		grep -q " CHECK getcap-version OK\$" "$console" || why="$why; check getcap-version"
	fi
	grep -q " CHECK .* FAIL" "$console" && why="$why; a check failed"
	grep -q " TIS-RESULT PASS\$" "$console" || why="$why; no TIS-RESULT PASS"

	# The guest slept 1 s between the two marks; the host clock must agree.
	local t0 t1 slept
	t0=$(awk '/ TIME-MARK 0$/ { print $1; exit }' "$console")
	t1=$(awk '/ TIME-MARK 1$/ { print $1; exit }' "$console")
	if [ -n "$t0" ] && [ -n "$t1" ]; then
		slept=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		awk -v s="$slept" 'BEGIN { exit !(s >= 0.8 && s <= 2.0) }' ||
			why="$why; guest 1 s sleep took ${slept}s of host time"
	else
		why="$why; no time marks"
		slept="?"
	fi

	if [ -n "$why" ]; then
		echo "--- $mode console (last 40 lines) ---"
		tail -40 "$console"
		echo "--- swtpm log (last 10 lines) ---"
		tail -10 "$d/swtpm.log" 2>/dev/null
		KEEP=1
		fail "$mode:${why}"
	fi

	echo "PASS $mode: $(grep -o 'TIS-INFO.*' "$console" | head -1)"
	echo "  guest sleep(1s) = ${slept}s host time; $(grep -o 'TIS-BOOT.*' "$console")"
	local k
	for k in getrandom32 pcr_extend16; do
		local dp dm sp sm mm
		dp=$(field "TIS-BENCH $k " p50_us "$console")
		dm=$(field "TIS-BENCH $k " mean_us "$console")
		mm=$(field "TIS-BENCH $k " mmio_per_cmd "$console")
		sp=$(field "SOCK-BENCH $k " p50_us "$d/socket.txt")
		sm=$(field "SOCK-BENCH $k " mean_us "$d/socket.txt")
		awk -v k="$k" -v dp="$dp" -v dm="$dm" -v sp="$sp" -v sm="$sm" -v mm="$mm" 'BEGIN {
			printf "  %-13s driver p50 %6d us mean %6d us | socket p50 %5d us mean %5d us | ratio p50 %.1fx mean %.1fx | %s MMIO/cmd\n",
				k, dp, dm, sp, sm, (sp > 0 ? dp / sp : 0), (sm > 0 ? dm / sm : 0), mm }'
	done
	grep -o -e 'TIS-BENCH gotpm_pcr_extend16.*' -e 'TIS-BENCH wide_.*' -e 'TIS-COEXIST.*' -e 'TIS-FAULT.*' "$console" | sed 's/^/  /'
}

for m in $MODES; do
	run_mode "$m"
done
echo "PASS"
