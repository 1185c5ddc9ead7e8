#!/usr/bin/env bash
# run.sh: boot Xen 4.17 and a Linux dom0 under QEMU (TCG) and run a test scenario in dom0.
#
# Usage:
#   run.sh [options] SCENARIO_DIR        run SCENARIO_DIR/dom0-test.sh; exit 0 only on PASS
#   run.sh -i [options] [SCENARIO_DIR]   interactive: a dom0 shell on this terminal
#
# Options (a scenario's scenario.conf may set defaults as TESTBED_* variables, in brackets):
#   --tpm 2.0|1.2|none   swtpm behind QEMU's -device tpm-tis (default none) [TESTBED_TPM]
#   --tpm-state DIR      keep swtpm's state in DIR across runs (default: fresh per run)
#   [TESTBED_TPM_SETUP]  swtpm_setup arguments for a fresh TPM state, as a host owner's
#                        provisioning, e.g. "--take-ownership --ownerpass P --srkpass S"
#   --mem MB             QEMU memory (default 1024) [TESTBED_MEM]
#   --dom0-mem SIZE      dom0's memory, Xen syntax (default 512M) [TESTBED_DOM0_MEM]
#   --smp N              virtual CPUs (default 2) [TESTBED_SMP]
#   --hvm 0|1|ovmf       give dom0 what HVM guests need: the device model with TPM
#                        support (built by devicemodel.sh on first use, ~6 min),
#                        hvmloader, SeaBIOS, QEMU's option ROMs; ovmf adds OVMF
#                        (default 0) [TESTBED_HVM]
#   --timeout SECS       overall limit; QEMU is killed after it (default 600) [TESTBED_TIMEOUT]
#   --xen-args ARGS      extra Xen command line [TESTBED_XEN_ARGS]
#   --dom0-args ARGS     extra dom0 kernel command line [TESTBED_DOM0_ARGS]
#   --log FILE           where to keep the serial log (default: under the cache, printed)
#   --tail N             lines of each console printed on failure (default 40)
#   --keep               keep the run directory (staged initramfs, swtpm log)
#   -q, --quiet          do not stream the serial console; print only the summary
#   --story              as -q, but show the scenario's story as it happens: its STEP:
#                        and FIGURE lines, dom0's verdict line (make demo); build.sh's
#                        output goes to a file, shown if it fails
#   -i, --interactive    boot to a dom0 shell (Ctrl-a x quits QEMU)
#
# A scenario directory holds dom0-test.sh, scenario.conf (its title, its order in make
# test and the TESTBED_* defaults above) and any files it needs; all of it is copied to
# /test in dom0. An optional build.sh in it runs first, on the host, to generate files
# into $TESTBED_STAGE (which becomes /test). See README.md.
#
# Exit status: 0 PASS; 1 FAIL, timeout or no verdict; 2 bad usage or set-up error; 4 FAIL
# in a run where Xen reported a triple fault bearing the test bed's own mark (a RIP in
# Xen's code or in a Linux kernel) or dom0 named one (a TESTBED-FAULT line: also a Go
# domain's at a hypercall return): QEMU's emulated SVM, not the scenario.
set -euo pipefail
shopt -s extglob # for the escape-sequence pattern in timestamp()

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
CACHE=${XENVTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvtpm}/testbed

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 2
}
die() {
	echo "testbed: error: $*" >&2
	exit 2
}
say() { echo "testbed: $*" >&2; }

# ---- options ----
opt_tpm="" opt_tpm_state="" opt_mem="" opt_dom0_mem="" opt_smp="" opt_timeout="" opt_hvm=""
opt_xen_args="" opt_dom0_args="" opt_log="" tail_lines=40 keep=0 quiet=0 story=0 interactive=0
scenario=""
while [ $# -gt 0 ]; do
	case $1 in
	--tpm) opt_tpm=${2:?--tpm needs 2.0, 1.2 or none}; shift 2 ;;
	--tpm-state) opt_tpm_state=${2:?--tpm-state needs a directory}; shift 2 ;;
	--mem) opt_mem=${2:?--mem needs MB}; shift 2 ;;
	--dom0-mem) opt_dom0_mem=${2:?--dom0-mem needs a size}; shift 2 ;;
	--smp) opt_smp=${2:?--smp needs a count}; shift 2 ;;
	--hvm) opt_hvm=${2:?--hvm needs 0, 1 or ovmf}; shift 2 ;;
	--timeout) opt_timeout=${2:?--timeout needs seconds}; shift 2 ;;
	--xen-args) opt_xen_args=${2?--xen-args needs a value}; shift 2 ;;
	--dom0-args) opt_dom0_args=${2?--dom0-args needs a value}; shift 2 ;;
	--log) opt_log=${2:?--log needs a file}; shift 2 ;;
	--tail) tail_lines=${2:?--tail needs a count}; shift 2 ;;
	--keep) keep=1; shift ;;
	-q | --quiet) quiet=1; shift ;;
	--story) story=1 quiet=1; shift ;;
	-i | --interactive) interactive=1; shift ;;
	-h | --help) usage ;;
	-*) die "unknown option $1 (try --help)" ;;
	*)
		[ -z "$scenario" ] || die "only one scenario directory may be given"
		scenario=$1
		shift
		;;
	esac
done
if [ -n "$scenario" ]; then
	[ -d "$scenario" ] || die "no such scenario directory: $scenario"
	scenario=$(readlink -f "$scenario")
	[ "$interactive" = 1 ] || [ -f "$scenario/dom0-test.sh" ] ||
		die "$scenario has no dom0-test.sh"
	if [ -f "$scenario/scenario.conf" ]; then
		# shellcheck source=/dev/null
		. "$scenario/scenario.conf"
	fi
elif [ "$interactive" = 0 ]; then
	die "a scenario directory is required (or -i for an interactive dom0)"
fi

tpm=${opt_tpm:-${TESTBED_TPM:-none}}
tpm_state=$opt_tpm_state
mem=${opt_mem:-${TESTBED_MEM:-1024}}
dom0_mem=${opt_dom0_mem:-${TESTBED_DOM0_MEM:-512M}}
smp=${opt_smp:-${TESTBED_SMP:-2}}
hvm=${opt_hvm:-${TESTBED_HVM:-0}}
timeout=${opt_timeout:-${TESTBED_TIMEOUT:-600}}
xen_args=${opt_xen_args:-${TESTBED_XEN_ARGS:-}}
dom0_args=${opt_dom0_args:-${TESTBED_DOM0_ARGS:-}}
case $tpm in 2.0 | 2 | 1.2 | none) ;; *) die "--tpm must be 2.0, 1.2 or none (got $tpm)" ;; esac
case $hvm in 0 | 1 | ovmf) ;; *) die "--hvm must be 0, 1 or ovmf (got $hvm)" ;; esac
if ! [[ $timeout =~ ^[0-9]+$ ]] || [ "$timeout" -lt 90 ]; then
	die "--timeout must be at least 90 seconds (dom0 gets it less 60 for the scenario)"
fi
[[ $tail_lines =~ ^[0-9]+$ ]] || die "--tail needs a number"
for v in "$xen_args" "$dom0_args"; do
	# QEMU splits its multiboot module list on commas.
	[[ $v != *,* ]] || die "kernel arguments cannot contain commas (QEMU module list): $v"
done
for c in qemu-system-x86_64 dpkg-deb apt-get; do
	command -v "$c" >/dev/null || die "$c not found: run $HERE/host-deps.sh"
done
[ "$tpm" = none ] || command -v swtpm >/dev/null || die "swtpm not found: run $HERE/host-deps.sh"

# ---- artifacts ----
"$HERE/prepare.sh" -q || die "prepare.sh failed"
dom0_hvm=() # the HVM addition to dom0's initramfs, if any
if [ "$hvm" != 0 ]; then
	hvm_variant=""
	[ "$hvm" = 1 ] || hvm_variant=$hvm
	if ! "$HERE/devicemodel.sh" -q --check >/dev/null; then
		say "building the HVM device model first (once per machine, ~6 min on 2 cores)"
	fi
	# shellcheck disable=SC2086 # hvm_variant is empty or one word
	f=$("$HERE/prepare.sh" -q hvm $hvm_variant) || die "prepare.sh hvm failed"
	dom0_hvm=("$f")
fi
# shellcheck source=/dev/null
. "$CACHE/out/testbed.env"

# Everything QEMU reads goes through a run directory without commas or spaces, which
# QEMU's -initrd module list cannot carry.
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/xenvtpm-testbed.XXXXXX")
[[ $run_dir != *[,\ ]* ]] || die "TMPDIR must not contain commas or spaces: $run_dir"
qemu_pid="" swtpm_pid="" ts_pid=""
cleanup() {
	[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
	[ -z "$swtpm_pid" ] || kill "$swtpm_pid" 2>/dev/null || true
	[ -z "$ts_pid" ] || wait "$ts_pid" 2>/dev/null || true
	if [ "$keep" = 1 ]; then
		say "run directory kept: $run_dir"
	else
		rm -rf "$run_dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

name=${scenario:+$(basename "$scenario")}
name=${name:-interactive}
if [ -n "$opt_log" ]; then
	log_file=$(readlink -f "$opt_log")
else
	mkdir -p "$CACHE/runs"
	# The run directory's random suffix keeps parallel runs of one scenario apart.
	log_file=$CACHE/runs/$name-$(date +%Y%m%d-%H%M%S)-${run_dir##*.}.log
	# Keep the newest 30 logs.
	find "$CACHE/runs" -name '*.log' -printf '%T@ %p\n' | sort -rn | tail -n +31 |
		cut -d' ' -f2- | xargs -r rm -f
fi
mkdir -p "$(dirname "$log_file")"

# ---- dom0 initramfs: the prepared base plus /init, the helpers and the scenario ----
stage=$run_dir/overlay
mkdir -p "$stage/testbed" "$stage/test"
install -m 755 "$HERE/dom0/init" "$stage/init"
install -m 644 "$HERE/dom0/testlib.sh" "$stage/testbed/testlib.sh"
if [ -n "$scenario" ]; then
	cp -a "$scenario/." "$stage/test/"
	if [ -f "$scenario/build.sh" ]; then
		say "building scenario files ($scenario/build.sh)"
		if [ "$story" = 1 ]; then
			exec 4>"$run_dir/build.log" 5>&4
		else
			exec 4>&1 5>&2
		fi
		if ! (
			set -a
			# shellcheck source=/dev/null
			. "$CACHE/out/testbed.env"
			set +a
			export TESTBED_STAGE=$stage/test TESTBED_SCENARIO=$scenario TESTBED_DIR=$HERE
			export TESTBED_HVM=$hvm
			cd "$scenario" && bash ./build.sh &&
				"$HERE/hypercall-returns.sh" "$TESTBED_STAGE"
		) >&4 2>&5; then
			[ "$story" = 0 ] || tail -n 30 "$run_dir/build.log" >&2
			die "scenario build failed: $scenario/build.sh"
		fi
		exec 4>&- 5>&-
	fi
else
	rmdir "$stage/test"
fi
# The kernel accepts concatenated cpio archives; later entries add to earlier ones.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	"$TESTBED_ROOT/bin/busybox" cpio -o -H newc 2>/dev/null) >"$run_dir/overlay.cpio" ||
	die "cannot archive the dom0 overlay"
cat "$TESTBED_DOM0_BASE" "${dom0_hvm[@]}" "$run_dir/overlay.cpio" >"$run_dir/dom0.cpio"
# Copies, not links: a later prepare.sh may replace the cached files while QEMU runs.
# dom0's kernel is the uncompressed ELF: Xen then starts dom0 ~4 s sooner than when it
# has to decompress the bzImage under the emulated CPU.
cp "$TESTBED_XEN" "$run_dir/xen"
cp "$TESTBED_VMLINUX" "$run_dir/vmlinux"

# ---- swtpm ----
tpm_args=()
if [ "$tpm" != none ]; then
	tpm_state=${tpm_state:-$run_dir/tpm-state}
	mkdir -p "$tpm_state"
	swtpm_flags=()
	[ "$tpm" = 1.2 ] || swtpm_flags+=(--tpm2)
	if [ -n "${TESTBED_TPM_SETUP:-}" ] && ! ls "$tpm_state"/tpm*-00.permall >/dev/null 2>&1; then
		# shellcheck disable=SC2086 # a list of arguments
		swtpm_setup --tpm-state "$tpm_state" "${swtpm_flags[@]}" $TESTBED_TPM_SETUP \
			>"$run_dir/swtpm_setup.log" 2>&1 || die "swtpm_setup $TESTBED_TPM_SETUP failed (log: $run_dir/swtpm_setup.log)"
		say "swtpm provisioned: swtpm_setup $TESTBED_TPM_SETUP"
	fi
	swtpm socket --tpmstate dir="$tpm_state" --ctrl type=unixio,path="$run_dir/swtpm.sock" \
		--log file="$run_dir/swtpm.log" "${swtpm_flags[@]}" &
	swtpm_pid=$!
	for _ in $(seq 50); do [ -S "$run_dir/swtpm.sock" ] && break; sleep 0.1; done
	[ -S "$run_dir/swtpm.sock" ] || die "swtpm did not start (log: $run_dir/swtpm.log)"
	tpm_args=(-chardev "socket,id=chrtpm,path=$run_dir/swtpm.sock"
		-tpmdev "emulator,id=tpm0,chardev=chrtpm" -device "tpm-tis,tpmdev=tpm0")
fi

# ---- QEMU ----
# The CPU model: QEMU's "max" without AVX/AVX2 by default. With them, PV
# processes (dom0's xl, a PV guest's tpm2-tools and OpenSSL) were seen to
# crash or compute wrong results at random while PVH guests were fine: a
# sign of vector state not surviving Xen's PV context switches on QEMU's
# young AVX emulation. TESTBED_CPU overrides it.
cpu=${TESTBED_CPU:-max,-avx,-avx2}
accel=${TESTBED_ACCEL:-tcg}
# Xen's lazy FPU switching (its default on AMD) loses processes' vector registers
# under QEMU's emulated CPU: dom0's and PV guests' processes crashed (busybox,
# xenstored) or computed wrong results (tpm2_checkquote), most often while HVM vCPUs
# ran under emulated SVM but also with PV guests alone. spec-ctrl=eager-fpu switches
# the FPU state with every vCPU and makes it stop. TESTBED_FPU_XEN_ARGS overrides it.
xen_fpu_args=${TESTBED_FPU_XEN_ARGS-spec-ctrl=eager-fpu}
# smap=0: the PV dom0 otherwise faults at once under QEMU's emulated CPU. A 1 MiB console
# ring keeps the whole run readable by `xl dmesg`.
xen_cmdline="console=com1 com1=115200,8n1 dom0_mem=$dom0_mem,max:$dom0_mem loglvl=all guest_loglvl=all smap=0 conring_size=1M $xen_fpu_args $xen_args"
# initcall_blacklist=init_tis: Debian builds tpm_tis in; dom0 must leave the TPM to the
# domain given iomem access to it.
mode="test"
[ "$interactive" = 0 ] || mode="shell"
deadline=$((timeout - 60))
dom0_cmdline="console=hvc0 earlyprintk=xen initcall_blacklist=init_tis quiet testbed.mode=$mode testbed.deadline=$deadline $dom0_args"
qemu=(qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem"
	-nographic -no-reboot
	-kernel "$run_dir/xen" -append "$xen_cmdline"
	-initrd "$run_dir/vmlinux $dom0_cmdline,$run_dir/dom0.cpio"
	"${tpm_args[@]}")

[ "$story" = 0 ] || [ -z "${TESTBED_TITLE:-}" ] || say "$TESTBED_TITLE"
say "scenario: ${scenario:-none}; tpm: $tpm; memory: ${mem}M (dom0 $dom0_mem); timeout: ${timeout}s"
say "serial log: $log_file"

if [ "$interactive" = 1 ]; then
	say "interactive dom0: type 'poweroff -f' or Ctrl-a x to leave"
	"${qemu[@]}" 2>&1 | tee "$log_file"
	exit 0
fi

# usecs prints the time in microseconds (bash 5 has it without forking).
usecs() { echo "${EPOCHREALTIME/./}"; }
start=$(usecs)

# timestamp prefixes each serial line with the host seconds since QEMU started, keeps it
# in the log and (unless quiet) shows it; with --story it shows the story's lines.
# Carriage returns go (serial lines end in CR LF, lines relayed from dom0 in CR CR LF),
# and so do the terminal escapes SeaBIOS starts with.
timestamp() {
	local line t stamp
	while IFS= read -r line || [ -n "$line" ]; do
		t=$(($(usecs) - start))
		line=${line//$'\r'/}
		line=${line//$'\e'\[*([0-9;?])[A-Za-z]/}
		line=${line//$'\e'c/}
		printf -v stamp '[%4d.%02d]' $((t / 1000000)) $((t % 1000000 / 10000))
		printf '%s %s\n' "$stamp" "$line" >&3
		if [ "$quiet" = 0 ]; then
			printf '%s %s\n' "$stamp" "$line"
		elif [ "$story" = 1 ]; then
			story_line "$stamp" "$line"
		fi
	done
}

# story_line STAMP TEXT shows a serial line that tells the scenario's story: a STEP: or
# FIGURE line of dom0's, with or without log's "[dom0 +SECS] ", dom0's PASS: or FAIL:
# line, and when dom0 is up. Lines in the dumps at the end (a domain's console may hold
# FIGURE lines) are not shown.
in_dump=0
story_line() {
	local text=$2
	case $text in
	"===== BEGIN "*) in_dump=1 ;;
	"===== END "*) in_dump=0 ;;
	esac
	[ "$in_dump" = 0 ] || return 0
	text=${text#"[dom0 +"*"s] "}
	case $text in
	"STEP: "*) printf '%s %s\n' "$1" "${text#STEP: }" ;;
	"FIGURE "* | "PASS: "* | "FAIL: "*) printf '%s   %s\n' "$1" "$text" ;;
	TESTBED-DOM0-READY*) printf '%s %s\n' "$1" "Xen and dom0 are up; the scenario starts" ;;
	esac
}

mkfifo "$run_dir/serial"
timestamp <"$run_dir/serial" 3>"$log_file" &
ts_pid=$!
"${qemu[@]}" </dev/null >"$run_dir/serial" 2>&1 &
qemu_pid=$!

# Watch QEMU: enforce the timeout and sample its peak memory (VmHWM) while it lives.
timed_out=0 peak_kb=0
while kill -0 "$qemu_pid" 2>/dev/null; do
	while read -r key val _; do
		if [ "$key" = VmHWM: ] && [ "$val" -gt "$peak_kb" ]; then peak_kb=$val; fi
	done <"/proc/$qemu_pid/status" 2>/dev/null || true
	if [ $((($(usecs) - start) / 1000000)) -ge "$timeout" ]; then
		timed_out=1
		say "timeout: ${timeout}s passed, killing QEMU"
		kill "$qemu_pid" 2>/dev/null || true
		break
	fi
	sleep 0.5
done
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=""
wait "$ts_pid" || true
ts_pid=""
total=$((($(usecs) - start) / 10000))

# ---- verdict ----
# Lines in the log are "[SSSS.CC] text"; markers are matched at the start of the text.
result=$(sed -n 's/^\[ *[0-9.]*\] TESTBED-RESULT: //p' "$log_file" | tail -n1)
if [ -z "$result" ]; then
	if [ "$timed_out" = 1 ]; then
		result="FAIL timeout after ${timeout}s with no verdict from dom0"
	else
		result="FAIL QEMU exited (status $qemu_rc) with no verdict from dom0 (Xen or dom0 crash?)"
	fi
fi
ready=$(sed -n 's/^\[ *\([0-9.]*\)\] TESTBED-DOM0-READY.*/\1/p' "$log_file" | head -n1)

# print_tails shows the end of each console the log holds, so a failure can be read
# without opening the log: Xen's (the xen-dmesg dump, else its live lines), dom0's (what
# is neither Xen's nor inside a dump), each guest console dump, and what each domain wrote
# to Xen's console (console_io, e.g. Go images' early output).
print_tails() {
	local n=$tail_lines sec
	echo
	if grep -q '^\[[ 0-9.]*\] ===== BEGIN xen-dmesg =====' "$log_file"; then
		echo "==================== tail of Xen's console (xl dmesg) ===================="
		dump_section xen-dmesg | tail -n "$n"
	else
		echo "==================== tail of Xen's console (serial) ===================="
		grep -E '^\[[ 0-9.]*\] \(XEN\)' "$log_file" | tail -n "$n" || true
	fi
	echo "==================== tail of dom0's console ===================="
	awk '/^\[[ 0-9.]*\] ===== BEGIN /{d=1} !d && !/^\[[ 0-9.]*\] \((XEN|d[0-9]+)\)/{print} /^\[[ 0-9.]*\] ===== END /{d=0}' \
		"$log_file" | tail -n "$n"
	while read -r sec; do
		echo "==================== tail of console of domain ${sec#console } ===================="
		dump_section "$sec" | tail -n "$n"
	done < <(sed -n 's/^\[ *[0-9.]*\] ===== BEGIN \(console .*\) =====$/\1/p' "$log_file" | sort -u)
	local d
	while read -r d; do
		echo "==================== tail of Xen console output of $d ===================="
		grep -E "^\[[ 0-9.]*\] \($d\)" "$log_file" | tail -n "$n"
	done < <(grep -oE '^\[[ 0-9.]*\] \(d[0-9]+\)' "$log_file" | grep -oE 'd[0-9]+' | sort -u)
	echo "==================== end of tails (full log: $log_file) ===================="
}

# dump_section NAME prints the lines of dom0's dump NAME from the log.
dump_section() {
	awk -v b="===== BEGIN $1 =====" -v e="===== END $1 =====" '
		{ t = $0; sub(/^\[[ 0-9.]*\] /, "", t) }
		t == e { d = 0 }
		d { print }
		t == b { d = 1 }' "$log_file"
}

# testbed_faults prints "dID RIP" for each triple fault in Xen's console whose RIP bears
# the test bed's mark (dom0's testlib.sh, testbed_fault): in Xen's own code or in a Linux
# kernel.
testbed_faults() {
	local mark
	mark=$(sed -n "s/^TESTBED_MARK='\(.*\)'\$/\1/p" "$HERE/dom0/testlib.sh")
	sed -n 's/^\[ *[0-9.]*\] (XEN) //p' "$log_file" | awk -v m="$mark" '
		/v0 Triple fault/ { id = $1; sub(/v0$/, "", id); on = 1; next }
		on && /^RIP:/ { on = 0; if ($2 ~ m) print id, $2 }' | sort -u
}

[[ $result == PASS* ]] || print_tails
say "dom0 ready at +${ready:-?}s; total $((total / 100)).$(printf %02d $((total % 100)))s; QEMU peak RSS $((peak_kb / 1024)) MiB"
say "serial log: $log_file"
say "RESULT: $result"
[[ $result != PASS* ]] || exit 0
# dom0 names the faults it told apart by the domain's image (a hypercall
# return: testbed_fault, mgr_lost) on TESTBED-FAULT lines.
faults=$(testbed_faults | tr '\n' ' ')
faults=${faults% }
told=$(grep -m1 -o 'TESTBED-FAULT: .*' "$log_file" | tr -d '\r') || true
if [ -n "$faults$told" ]; then
	say "the test bed's own fault (QEMU's emulated SVM) hit this run:${faults:+ triple faults $faults}${told:+ dom0 says $told}"
	exit 4
fi
exit 1
