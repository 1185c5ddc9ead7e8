# testlib.sh: helpers for scenario scripts running in the test bed's dom0 (busybox ash).
#
# The dom0 init sources this before /test/dom0-test.sh, and the interactive dom0 shell
# sources it too (through $ENV). Timestamps are seconds of dom0 uptime.
#
#   log MSG...                      print a timestamped line on the console
#   pass [MSG]                      record PASS and end the test
#   fail REASON                     record FAIL REASON and end the test
#   check DESC CMD [ARGS...]        run CMD; fail "DESC" if it exits non-zero
#   xl_create CFG [XL-ARGS...]      xl create CFG, logging how long xl took (a domain that
#                                   exists counts as created even if xl crashed); XL_DOMID
#                                   is the new domain's id (empty if it was already gone)
#   wait_console DOM PATTERN [SECS] wait until DOM's console log matches PATTERN (grep -E)
#   wait_progress DOM PATTERN SECS MARKERS
#                                   wait_console, logging DOM's newest line matching MARKERS
#                                   (grep -E) each time it changes: a slow guest shows how
#                                   far it got
#   wait_dmesg PATTERN [SECS]       wait until `xl dmesg` (Xen's console) matches PATTERN
#   wait_gone DOM [SECS]            wait until DOM no longer exists
#   console_log DOM                 print the path of DOM's console log
#   wait_file FILE PATTERN [SECS]   wait until FILE matches PATTERN (grep -E), e.g. an HVM
#                                   guest's serial port kept with xl's serial="file:FILE"
#   dm_log DOM                      print the path of an HVM guest's device model log
#   figure NAME VALUE               print "FIGURE NAME VALUE", a measurement for reports
#   memory_figure LOG WHO NAME      figure NAME: the memory line WHO (a Go domain) wrote to
#                                   its console log LOG as it powered off; fail without one
#   step MSG...                     log "STEP: MSG", one step of the scenario's story as a
#                                   reader should see it: run.sh --story (make demo) shows
#                                   these, the FIGURE lines and the verdict, nothing else
#   now                             print dom0 uptime in seconds (centisecond precision)
#   elapsed T0                      print seconds since the uptime T0 (from now)
#
#   testbed_fault N                 true, printing a TESTBED-FAULT line, if one of the triple
#                                   faults after Xen's first N is the test bed's own
#   testbed_lost ID                 true if domain ID triple-faulted by the test bed's own fault
#   boot_guest CFG NAME PAT SECS [ARGS]
#                                   create a guest, wait for PAT; once more if the test bed lost it
#   console_or_gone NAME PAT SECS   wait until NAME's console matches PAT, or NAME is gone
#   drop_faulted NAME ID RIP WHY    log, answer for, destroy and keep apart a faulted domain
#
# The wait_* helpers return 0 when the condition is met and 1 after SECS (default 60)
# seconds, or 180 s after a domain's testbed_fault; they do not fail the test
# themselves, so a script says what a miss means:
#   wait_console pvh 'GUEST-INIT-RAN' 120 || fail "pvh guest init did not run"

TESTBED_RESULT_FILE=/run/testbed/result
# TESTBED_MARK (grep -E, awk) matches the RIP of a triple fault that bears the test bed's
# mark (testbed_fault); run.sh reads it from this line too.
TESTBED_MARK='^(e008:|0010:[[]<ffffffff)'
TESTBED_CONSOLE_DIR=/var/log/xen/console

now() {
	cut -d' ' -f1 /proc/uptime
}

log() {
	echo "[dom0 +$(now)s] $*"
}

# record_result keeps the first verdict: a later pass cannot hide an earlier fail made in
# a subshell (a pipeline or $(...)), where exit does not end the test.
record_result() {
	mkdir -p "${TESTBED_RESULT_FILE%/*}"
	[ -s "$TESTBED_RESULT_FILE" ] || echo "$*" >"$TESTBED_RESULT_FILE"
}

pass() {
	log "PASS${1:+: $*}"
	record_result PASS
	exit 0
}

fail() {
	# A fault of the test bed's own is named here, even if no wait saw it,
	# for run.sh to give the run one more try.
	testbed_fault 0 || true
	log "FAIL: ${*:-no reason given}"
	record_result "FAIL ${*:-no reason given}"
	exit 1
}

check() {
	local desc=$1
	shift
	if "$@"; then
		log "ok: $desc"
	else
		fail "$desc (command: $*)"
	fi
}

console_log() {
	echo "$TESTBED_CONSOLE_DIR/guest-$1.log"
}

xl_create() {
	local t0 rc=0 name kernel
	name=$(_cfg_value name "$@")
	kernel=$(_cfg_value kernel "$@")
	t0=$(now)
	log "xl create $*"
	xl create "$@" || rc=$?
	# At once: a domain may be done and gone within a second.
	XL_DOMID=$([ -n "$name" ] && xl domid "$name" 2>/dev/null)
	if [ "$rc" -eq 0 ]; then
		log "xl create $1 done in $(elapsed "$t0")s"
	elif [ -n "$XL_DOMID" ]; then
		# xl's domain-monitoring child has been seen to segfault on this
		# test bed after the domain was built; xl then reports failure for
		# a domain that runs. Judge by the domain, and say so.
		log "xl create $1 exited with status $rc but domain $name exists; carrying on (xl's own crash, not the domain's)"
	else
		log "xl create $1 failed with status $rc"
		return "$rc"
	fi
	_note_kernel "$XL_DOMID" "$kernel"
	return 0
}

# _cfg_value KEY CFG [ARGS]: the value of KEY among xl create's ARGS (the
# last wins), else in the file CFG; nothing if neither sets it.
_cfg_value() {
	local key=$1 v
	shift
	v=$(shift; printf '%s\n' "$@" | sed -n "s/^$key *= *\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" | tail -n 1)
	[ -n "$v" ] || v=$(sed -n "s/^$key *= *\"\([^\"]*\)\".*/\1/p" "$1" 2>/dev/null | head -n 1)
	echo "$v"
}

# _KERNELS has a line "ID KERNEL" for each domain xl_create made (Xen
# does not reuse ids while it runs), so a triple fault's RIP can be looked
# up in the image's hypercall returns (testbed_fault).
_KERNELS=/run/testbed/kernels
_note_kernel() {
	[ -n "$1" ] && [ -n "$2" ] || return 0
	mkdir -p "${_KERNELS%/*}"
	echo "$1 $2" >>"$_KERNELS"
}

# elapsed T0 prints the seconds since uptime T0.
elapsed() {
	awk -v t0="$1" -v t1="$(now)" 'BEGIN{printf "%.2f", t1 - t0}'
}

# _wait_for polls CMD once a second until it succeeds or SECS have passed, logging how
# long the wait took either way (the numbers are what timing reports are built from).
# When a domain has died of the test bed's own fault (testbed_fault) that no wait has
# answered for yet, it waits at most _FAULT_GRACE seconds more: a guest xl restarts
# (on_reboot="restart"; an HVM guest's boot takes 90 s here) may still get there, and
# otherwise nothing the wait is for will come. _FAULTS_SEEN counts Xen's triple-fault
# reports already answered for, so that one fault shortens one wait; a wait counts from
# there rather than from its own start, for a domain that faulted a moment before.
_FAULT_GRACE=180
_FAULTS_SEEN=0
_wait_for() {
	local what=$1 secs=$2 t0 i=0 f=""
	shift 2
	t0=$(now)
	while :; do
		if "$@"; then
			log "seen: $what after $(elapsed "$t0")s"
			return 0
		fi
		if awk -v e="$(elapsed "$t0")" -v s="$secs" 'BEGIN{exit !(e >= s)}'; then
			log "not seen within ${secs}s: $what"
			return 1
		fi
		i=$((i + 1))
		if [ -z "$f" ] && [ $((i % 5)) -eq 0 ] && _fault_shortens "$t0" "$secs" "$what"; then
			f=1 secs=$_DEADLINE
		fi
		sleep 1
	done
}

# _faults_answered marks every triple fault Xen has reported so far as answered for.
_faults_answered() {
	_FAULTS_SEEN=$(_triple_faults | wc -l)
}

# _fault_shortens T0 SECS WHAT: true when a test-bed fault no wait has answered for has
# come (testbed_fault): it is answered for, logged, and _DEADLINE is the deadline of the
# wait for WHAT that began at T0 and had SECS, shortened to _FAULT_GRACE seconds from now.
_fault_shortens() {
	local f
	f=$(testbed_fault "$_FAULTS_SEEN") || return 1
	_faults_answered
	_DEADLINE=$(awk -v e="$(elapsed "$1")" -v s="$2" -v g="$_FAULT_GRACE" 'BEGIN { print (e + g < s) ? int(e + g) : s }')
	log "$f; waiting for $3 at most until ${_DEADLINE}s into the wait"
}

# _triple_faults prints "ID RIP" for each triple fault Xen's console reports, oldest
# first.
_triple_faults() {
	xl dmesg 2>/dev/null | awk '
		/v0 Triple fault/ { id = $0; sub(/.*\) d/, "", id); sub(/v0 Triple.*/, "", id); on = 1; next }
		on && /RIP:/ { sub(/.*RIP: */, ""); print id, $0; on = 0 }'
}

# testbed_fault N: true, printing a TESTBED-FAULT line, when one of the triple faults
# Xen reported after the first N is the test bed's own (_faults): under QEMU's emulated
# SVM the test bed loses a domain's state that way now and then, whatever the domain
# runs; run.sh reads the line and build/test-all.sh gives such a run one more try.
testbed_fault() {
	_faults | awk -v n="$1" '
		NR > n && $3 {
			printf "TESTBED-FAULT: domain %s triple-faulted at RIP %s (the test bed'"'"'s nested SVM)\n", $1, $2
			found = 1; exit
		}
		END { exit !found }'
}

# testbed_lost ID: true when Xen reported domain ID triple-faulted and the fault is the
# test bed's own (_faults).
testbed_lost() {
	_faults | awk -v id="$1" '$1 == id { tb = $3; exit } END { exit !tb }'
}

# _faults prints "ID RIP TESTBED" for each triple fault Xen reported, oldest first;
# TESTBED is 1 when the fault is the test bed's own: its RIP is in Xen's own code (code
# selector e008, which no guest runs) or in a Linux kernel (0010:ffffffff...), which
# handles every exception it takes, or it is one of the hypercall returns of the Go
# image the domain ran (/test/IMAGE.hypercall-returns, made by the host's
# hypercall-returns.sh): the same instruction had returned from thousands of
# hypercalls before, with the IDT, GDT and page tables the domain set up once at boot,
# and a triple fault needs three deliveries through them to fail. Our own domains'
# other faults (code selector 0008, e.g. the memory probes' out-of-memory ends) do not
# count.
_faults() {
	_triple_faults | awk -v m="$TESTBED_MARK" -v k="$_KERNELS" '
		BEGIN { while ((getline l < k) > 0) { split(l, f, " "); kernel[f[1]] = f[2] } }
		{
			tb = $2 ~ m
			if (!tb && ($1 in kernel) && $2 ~ /^0008:\[<[0-9a-f]+>\]$/) {
				pc = $2
				gsub(/^0008:\[<0*|>\]$/, "", pc)
				f = kernel[$1] ".hypercall-returns"
				while ((getline l < f) > 0) if (l == pc) tb = 1
				close(f)
			}
			print $1, $2, tb
		}'
}

wait_console() {
	_wait_for "console of $1 matching '$2'" "${3:-60}" \
		grep -q -E -e "$2" "$(console_log "$1")" 2>/dev/null
}

wait_progress() {
	local dom=$1 pat=$2 secs=$3 markers=$4 t0 con last="" l i=0 f=""
	t0=$(now)
	con=$(console_log "$dom")
	while :; do
		if grep -q -E -e "$pat" "$con" 2>/dev/null; then
			log "seen: console of $dom matching '$pat' after $(elapsed "$t0")s"
			return 0
		fi
		if awk -v e="$(elapsed "$t0")" -v s="$secs" 'BEGIN{exit !(e >= s)}'; then
			log "not seen within ${secs}s: console of $dom matching '$pat'"
			return 1
		fi
		l=$(grep -E -e "$markers" "$con" 2>/dev/null | tail -n 1)
		if [ -n "$l" ] && [ "$l" != "$last" ]; then
			log "$dom: $(echo "$l" | cut -c1-160)"
			last=$l
		fi
		i=$((i + 1))
		if [ -z "$f" ] && [ $((i % 5)) -eq 0 ] && _fault_shortens "$t0" "$secs" "$dom's console"; then
			f=1 secs=$_DEADLINE
		fi
		sleep 1
	done
}

wait_file() {
	_wait_for "$1 matching '$2'" "${3:-60}" grep -q -E -e "$2" "$1" 2>/dev/null
}

dm_log() {
	echo "/var/log/xen/qemu-dm-$1.log"
}

# figure prints a measurement on a line of its own, where run.sh's log keeps it:
# "FIGURE hvm_create_to_init_s 52.3".
figure() {
	echo "FIGURE $1 $2"
}

# memory_figure LOG WHO NAME reports how much of its memory= a domain's life
# needed (README, memory): the line domain.LogMemory writes before "powering off".
memory_figure() {
	local m
	m=$(grep -o 'memory: the runtime holds.*' "$1") || fail "$2 logged no memory line as it powered off"
	figure "$3" "${m#memory: }"
}

# step says what the scenario has just shown, in one line for a reader who sees
# nothing else (run.sh --story).
step() {
	log "STEP: $*"
}

_dmesg_has() {
	xl dmesg 2>/dev/null | grep -q -E -e "$1"
}

wait_dmesg() {
	_wait_for "xl dmesg matching '$1'" "${2:-60}" _dmesg_has "$1"
}

_domain_gone() {
	! xl domid "$1" >/dev/null 2>&1
}

wait_gone() {
	_wait_for "domain $1 gone" "${2:-60}" _domain_gone "$1"
}

# create CFG NAME [ARGS]: xl_create, once more if it failed (xl itself has
# been seen to segfault while building a domain on the loaded test bed).
create() {
	local cfg=$1 name=$2
	shift 2
	xl_create "$cfg" "$@" && return 0
	log "$name was not created; retrying once"
	xl destroy "$name" >/dev/null 2>&1
	xl_create "$cfg" "$@"
}

# _console_or_gone DOM PATTERN: DOM's console matches PATTERN, or DOM is
# gone.
_console_or_gone() {
	grep -q -E -e "$2" "$(console_log "$1")" 2>/dev/null || _domain_gone "$1"
}

# boot_guest CFG NAME PATTERN SECS [ARGS]: create the guest NAME (create,
# with ARGS) and wait until its console matches PATTERN, within SECS. A
# guest that Xen reports triple-faulted is created once more at once if it
# had not written a byte to its console yet, or if the fault is the test
# bed's own (testbed_lost: in Xen's own code, in a Linux kernel, at a
# hypercall return of a Go image): under QEMU's emulated SVM the test bed
# loses a guest's state that way now and then, in its first instructions
# or later, which is the test bed's, not the guest's, doing. So is a guest
# gone before its id could be read, without a byte on its console. The
# faulted boot's console log is kept apart as NAME-faulted-ID; the caller
# keeps each boot's console log apart too (keep_log), so an empty log is
# this boot's. BOOT_DOMID is the id of the domain last created.
boot_guest() {
	local cfg=$1 name=$2 pat=$3 secs=$4 try id rip
	shift 4
	BOOT_DOMID=
	for try in 1 2; do
		create "$cfg" "$name" "$@" || return 1
		id=$XL_DOMID
		BOOT_DOMID=$id
		console_or_gone "$name" "$pat" "$secs" && return 0
		[ "$try" = 1 ] || return 1
		if [ -z "$id" ] && [ ! -s "$(console_log "$name")" ]; then
			log "$name was gone before its id was seen, without a byte on its console"
			keep_log "$name" "gone" >/dev/null
		elif [ -n "$id" ] && rip=$(triple_fault "$id") && testbed_lost "$id"; then
			drop_faulted "$name" "$id" "$rip" "the test bed's nested SVM" || return 1
		elif [ -n "$rip" ] && [ ! -s "$(console_log "$name")" ]; then
			drop_faulted "$name" "$id" "$rip" "before its console's first byte" || return 1
		else
			return 1
		fi
		log "creating $name once more"
	done
	return 1
}

# console_or_gone NAME PATTERN SECS: wait until NAME's console matches
# PATTERN (true) or NAME is gone or SECS have passed (false).
console_or_gone() {
	_wait_for "console of $1 matching '$2', or $1 gone" "$3" _console_or_gone "$1" "$2" &&
		grep -q -E -e "$2" "$(console_log "$1")" 2>/dev/null
}

# drop_faulted NAME ID RIP WHY: the domain NAME (id ID) triple-faulted at
# RIP, for the reason WHY, and is to be run again: log it, answer for the
# fault (no wait is shortened for it), destroy what is left of the domain
# and keep its console log apart as NAME-faulted-ID.
drop_faulted() {
	log "$1 (domain $2) triple-faulted at RIP $3 ($4): dropped, its console log kept as $1-faulted-$2"
	_faults_answered
	xl destroy "$1" >/dev/null 2>&1
	wait_gone "$1" 60 || return 1
	keep_log "$1" "faulted-$2" >/dev/null
}

# triple_fault ID: the RIP of Xen's dump of domain ID's triple fault, if
# Xen reported one (nothing and false otherwise).
triple_fault() {
	xl dmesg 2>/dev/null | awk -v t="d${1}v0 Triple fault" '
		index($0, t) { on = 1 }
		on && /RIP:/ { sub(/.*RIP: */, ""); print; found = 1; exit }
		END { exit !found }'
}

# smallest_memory CFG TAG PATTERN SIZES [ARGS]: sets SMALLEST to the first
# of SIZES (MiB, rising) in which a domain created from CFG with ARGS,
# named TAG-memN, writes PATTERN (an ERE) to its console within 120 s, and
# to nothing if none does; each size that does not is logged with the
# reason Xen's console or the domain's gives. xl itself has been seen to
# segfault while building a domain on the loaded test bed: a failed xl
# create is tried once more before a size is called too small.
smallest_memory() {
	local cfg=$1 tag=$2 pat=$3 sizes=$4 m dom c i id
	shift 4
	SMALLEST=
	for m in $sizes; do
		dom="$tag-mem$m"
		c=$(console_log "$dom")
		xl create -q "$cfg" "memory=$m" "name=\"$dom\"" "$@" >/tmp/xl-mem.log 2>&1 ||
			{ xl destroy "$dom" 2>/dev/null; xl create -q "$cfg" "memory=$m" "name=\"$dom\"" "$@" >/tmp/xl-mem.log 2>&1; }
		id=$(xl domid "$dom" 2>/dev/null)
		i=0
		while [ $i -lt 120 ] && ! grep -q -E -e "$pat" "$c" 2>/dev/null && xl domid "$dom" >/dev/null 2>&1; do
			sleep 1
			i=$((i + 1))
		done
		xl destroy "$dom" 2>/dev/null
		wait_gone "$dom" 30
		if grep -q -E -e "$pat" "$c" 2>/dev/null; then
			SMALLEST=$m
			return 0
		fi
		log "memory=$m: $dom did not start: $(xl dmesg | grep -e "(d$id) " -e "d${id}v0 " | grep -m1 'out of memory\|fatal error\|Triple fault')$(grep -m1 'cannot start\|panic:' "$c" 2>/dev/null | sed 's/^/; console: /')$(grep -m1 'too large\|error' /tmp/xl-mem.log | sed 's/^/; xl: /')"
	done
	return 1
}

# ended DOM STATE SECS: DOM went away within SECS, or it is still listed in
# a state matching STATE, a case pattern (s: shut down, c: crashed). The
# on_poweroff/on_crash "destroy" is done by the xl process that created the
# domain, and xl segfaults now and then on this test bed: the domain then
# stays listed in the state it ended in, which is what a test is about, and
# is destroyed here.
ended() {
	wait_gone "$1" "$3" && return 0
	local st
	st=$(xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }')
	case $st in
	*$2*)
		log "$1 ended in state $st but is still listed (its xl monitor is gone): destroying it"
		xl destroy "$1"
		wait_gone "$1" 30
		;;
	*)
		xl list
		return 1
		;;
	esac
}

# keep_log DOM TAG: move DOM's console log aside once it is gone, so the
# next domain of that name starts a fresh one (wait_console greps it all);
# prints the new path.
keep_log() {
	mv "$(console_log "$1")" "/tmp/console-$1-$2.log" 2>/dev/null
	echo "/tmp/console-$1-$2.log"
}

# release_locality0: SeaBIOS leaves TPM locality 0 active and, with dom0's
# tpm_tis blacklisted, nobody gives it back, so a manager requesting
# locality 2 would wait for good (see build/tisxen/testbed). The platform
# must release it before a manager at locality 2 starts.
release_locality0() {
	local acc
	acc=$(devmem 0xfed40000 8)
	if [ $((acc & 0x20)) -ne 0 ]; then
		devmem 0xfed40000 8 0x20
		log "released locality 0 (left active by firmware): TPM_ACCESS now $(devmem 0xfed40000 8)"
	fi
}

# TIS locality 0 registers, driven from dom0 with devmem (dom0's tpm_tis is
# blacklisted): TPM_ACCESS, TPM_STS, TPM_DATA_FIFO.
ACC=0xfed40000 STS=0xfed40018 FIFO=0xfed40024
# tis_wait REG MASK: poll an 8-bit register until (value & MASK) != 0.
tis_wait() {
	i=0
	while [ $(($(devmem "$1" 8) & $2)) -eq 0 ]; do
		i=$((i + 1))
		[ $i -lt 2000 ] || return 1
	done
}
# tis_cmd HEX-BYTES...: one command at locality 0; prints the response code.
tis_cmd() {
	devmem $ACC 8 0x02 # requestUse
	tis_wait $ACC 0x20 || { echo "locality 0 not granted"; return 1; }
	devmem $STS 8 0x40 # commandReady
	tis_wait $STS 0x40 || { echo "not commandReady"; return 1; }
	for b in "$@"; do devmem $FIFO 8 "0x$b"; done
	devmem $STS 8 0x20 # tpmGo
	tis_wait $STS 0x10 || { echo "no response"; return 1; }
	rc=""
	for _ in 1 2 3 4 5 6 7 8 9 10; do rc="$rc $(devmem $FIFO 8)"; done
	devmem $STS 8 0x40
	devmem $ACC 8 0x20 # relinquish
	echo "$rc"
}


# tis_xfer N HEX-BYTES...: one command at locality 0; prints the first N
# bytes of the response as one hex string.
tis_xfer() {
	n=$1
	shift
	devmem $ACC 8 0x02
	tis_wait $ACC 0x20 || { echo "locality 0 not granted" >&2; return 1; }
	devmem $STS 8 0x40
	tis_wait $STS 0x40 || { echo "not commandReady" >&2; return 1; }
	for b in "$@"; do devmem $FIFO 8 "0x$b"; done
	devmem $STS 8 0x20
	tis_wait $STS 0x10 || { echo "no response" >&2; return 1; }
	out=""
	i=0
	while [ $i -lt "$n" ]; do
		out="$out$(printf '%02x' "$(devmem $FIFO 8)")"
		i=$((i + 1))
	done
	devmem $STS 8 0x40
	devmem $ACC 8 0x20
	echo "$out"
}

# pcr_values FAMILY N...: "N HEX" lines of the PCRs' values, read from
# dom0 (SHA-256 bank on 2.0, SHA-1 on 1.2), ascending N.
pcr_values() {
	fam=$1
	shift
	if [ "$fam" = 2.0 ]; then
		# One TPM2_PCR_Read of them all (up to 8): header, update
		# counter and selection take 28 bytes, then each digest is a
		# 2-byte size and 32 bytes.
		mask=0
		for p in "$@"; do mask=$((mask | (1 << p))); done
		sel=$(printf '%06x' $mask | sed 's/\(..\)\(..\)\(..\)/\3 \2 \1/')
		r=$(tis_xfer $((28 + 34 * $#)) 80 01 00 00 00 14 00 00 01 7e 00 00 00 01 00 0b 03 $sel) || return 1
		[ "$(echo "$r" | cut -c13-20)" = 00000000 ] || { echo "TPM2_PCR_Read($*): $r" >&2; return 1; }
		i=0
		for p in "$@"; do
			o=$((2 * (30 + 34 * i) + 1))
			echo "$p $(echo "$r" | cut -c$o-$((o + 63)))"
			i=$((i + 1))
		done
	else
		for p in "$@"; do
			r=$(tis_xfer 30 00 c1 00 00 00 0e 00 00 00 15 $(printf '%08x' "$p" | sed 's/../& /g')) || return 1
			[ "$(echo "$r" | cut -c13-20)" = 00000000 ] || { echo "TPM_PCRRead($p): $r" >&2; return 1; }
			echo "$p $(echo "$r" | cut -c21-60)"
		done
	fi
}

# pcr_extend16 FAMILY HEX: extend PCR 16 (debug, resettable) from dom0
# with the digest HEX (32 bytes on 2.0, 20 on 1.2).
pcr_extend16() {
	d=$(echo "$2" | sed 's/../& /g')
	if [ "$1" = 2.0 ]; then
		rc=$(tis_cmd 80 02 00 00 00 41 00 00 01 82 00 00 00 10 00 00 00 09 40 00 00 09 00 00 00 00 00 00 00 00 01 00 0b $d)
	else
		rc=$(tis_cmd 00 c1 00 00 00 22 00 00 00 14 00 00 00 10 $d)
	fi
	set -- $rc
	[ "$7$8$9${10}" = 0x000x000x000x00 ] || fail "dom0 could not extend PCR 16: response header$rc"
}

# pcr_reset16 FAMILY: reset PCR 16 from dom0 (locality 0 may).
pcr_reset16() {
	if [ "$1" = 2.0 ]; then
		rc=$(tis_cmd 80 02 00 00 00 1b 00 00 01 3d 00 00 00 10 00 00 00 09 40 00 00 09 00 00 00 00 00)
	else
		rc=$(tis_cmd 00 c1 00 00 00 0f 00 00 00 c8 00 03 00 00 01)
	fi
	set -- $rc
	[ "$7$8$9${10}" = 0x000x000x000x00 ] || fail "dom0 could not reset PCR 16: response header$rc"
}

# xen_diag DOM: for a domain that stopped making progress, log its xl list
# line and Xen's view of its vCPUs and event channels (debug keys q and e:
# upcall_pend set on a blocked vCPU means an event nobody took).
xen_diag() {
	local id
	id=$(xl domid "$1" 2>/dev/null) || { log "xen_diag: no domain $1"; return 0; }
	log "xen_diag $1 (domid $id): $(xl list "$1" 2>&1 | tail -n 1)"
	xl dmesg -c >/dev/null 2>&1
	xl debug-keys q >/dev/null 2>&1
	xl debug-keys e >/dev/null 2>&1
	sleep 1
	xl dmesg 2>/dev/null | awk -v d="d$id" -v dom="domain $id" '
		index($0, dom) || index($0, d "v") || index($0, d " ") { on = 1; n = 0 }
		on && n++ < 12 { print }' | head -n 80 | while read -r l; do log "xen: $l"; done
	# Where its vCPU is: look RIP up in the image's symbols (go tool nm).
	/usr/lib/xen-4.17/bin/xenctx -a "$id" 2>&1 | head -n 40 | while read -r l; do log "xenctx: $l"; done
}

# run_client TAG EXTRA: one run of the manager's test client (build/mgrclient,
# client.cfg) with extra=EXTRA, which must PASS; $cl is its kept console log.
run_client() {
	create client.cfg client "extra=\"$2\"" || fail "xl create client.cfg failed ($1)"
	wait_console client '^MGRCLIENT-RESULT' 240 || fail "client ($1) did not finish"
	ended client "[sc]" 60 || fail "client ($1) still running after its result"
	cl=$(keep_log client "$1")
	grep '^MGRCLIENT' "$cl"
	grep -q '^MGRCLIENT-RESULT PASS' "$cl" || fail "client ($1): $(grep -m1 -e 'FAIL' "$cl")"
}
