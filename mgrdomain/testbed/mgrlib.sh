# Helpers of the manager domain's test-bed scenarios (testbed, testbed-tpm12,
# testbed-scale, testbed-churn), sourced by their dom0-test.sh after testlib.sh.

# start_mgr TAG: start the manager and wait until it serves or refuses.
start_mgr() {
	t0=$(now)
	create mgr.cfg mgr || fail "xl create mgr.cfg failed ($1)"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	grep -E 'mgrdomain|hardware TPM|disk |manager|serving|cannot' "$(console_log mgr)"
}

# serve_mgr TAG: start the manager on a blank disk (TPM locality 0 released
# first) and require it to serve; sets m, its console log, and mid, its id.
serve_mgr() {
	release_locality0
	cp /test/mgr.img /tmp/mgr.img || fail "cannot copy the manager's disk"
	start_mgr "$1"
	m=$(console_log mgr)
	grep -q 'serving vTPM domains' "$m" || fail "manager ($1) did not start: $(grep -m1 'cannot start' "$m")"
	mid=$(xl domid mgr)
}

# refused TAG ERE: the manager refused to start, on one console line that
# matches ERE (the kind of refusal), and is gone.
refused() {
	m=$(console_log mgr)
	grep -q 'serving vTPM domains' "$m" && fail "manager ($1) served when it should have refused"
	grep -m1 'cannot start' "$m" | grep -q -E -e "$2" || fail "manager ($1) refused, but not with $2: $(grep -m1 'cannot start' "$m")"
	ended mgr c 30 || { xl destroy mgr; fail "manager ($1) still running after refusing"; }
	log "manager ($1) refused: $(grep -m1 -o 'cannot start.*' "$m")"
	keep_log mgr "$1" >/dev/null
}

# mgr_lost ID: false while the manager (domain ID) runs. Gone, it is the
# test bed's loss, reported with a TESTBED-FAULT line, when Xen reports it
# triple-faulted as it returned from a hypercall or in Xen's code; any
# other end fails. The test bed's emulated SVM has triple-faulted domains
# of every kind that way: a Linux guest and the manager's client in Xen's
# own code (e008:, which testbed_fault knows), a flooding frontend and the
# manager at a hypercall stub's ret with interrupts disabled, the manager
# at pollIdle's CLI with them enabled, on QEMU 7.2 and 10.0 alike. None of
# those is the domain's doing: the same instruction had returned from
# thousands of hypercalls before, with the IDT, GDT and page tables the
# domain set up once at boot, and a triple fault needs three deliveries
# through them to fail. build.sh lists the image's hypercall returns.
mgr_lost() {
	local rip pc m
	xl domid mgr >/dev/null 2>&1 && return 1
	m=$(console_log mgr)
	rip=$(triple_fault "$1") || fail "the manager (domain $1) is gone, without a triple fault: $(tail -n 3 "$m" | tr -d '\r' | tr '\n' ' ')"
	pc=$(echo "$rip" | sed -n 's/^0008:\[<0*\([0-9a-f]*\)>\]$/\1/p')
	{ [ -n "$pc" ] && grep -qx "$pc" /test/mgr-hypercall-returns; } || echo "$rip" | grep -q -E -e "$TESTBED_MARK" ||
		fail "the manager (domain $1) triple-faulted at RIP $rip, neither a hypercall's return nor Xen's code: $(tail -n 3 "$m" | tr -d '\r' | tr '\n' ' ')"
	log "TESTBED-FAULT: the manager (domain $1) triple-faulted at RIP $rip, a hypercall's return or Xen's code (the test bed's nested SVM)"
	keep_log mgr "faulted-$1" >/dev/null
	return 0
}

# mgr_client NAME DEVICES FIRST EXTRA: start a test client (build/mgrclient)
# holding DEVICES vtpm devices whose backend is the manager, uuids
# numbered from FIRST, options EXTRA; return once it holds them all. It
# returns 2 when the test bed lost the client (client_wait), 1 when the
# manager went away meanwhile (for the caller's mgr_lost).
mgr_client() {
	local name=$1 n=$2 first=$3 extra=$4 i sep=""
	{
		echo "name = \"$name\""
		echo 'type = "pvh"'
		echo 'kernel = "/test/mgrclient"'
		echo "extra = \"$extra\""
		printf 'vtpm = [ '
		i=0
		while [ "$i" -lt "$n" ]; do
			printf '%s"backend=mgr,uuid=6d677274-7363-616c-8000-%012x"' "$sep" $((first + i))
			sep=", "
			i=$((i + 1))
		done
		echo ' ]'
		echo 'memory = 64'
		echo 'vcpus = 1'
		echo 'max_event_channels = 2048'
		echo 'tsc_mode = "native"'
		echo 'on_poweroff = "destroy"'
		echo 'on_crash = "destroy"'
		echo 'on_reboot = "destroy"'
	} >"/tmp/$name.cfg"
	local t0
	t0=$(now)
	if ! create "/tmp/$name.cfg" "$name"; then
		xl domid mgr >/dev/null 2>&1 || return 1
		fail "xl create $name ($n vtpm devices) failed"
	fi
	log "FIGURE xl create $name with $n vtpm devices: $(elapsed "$t0")s"
	client_wait "$name" 'MGRCLIENT-HOLDING|MGRCLIENT-RESULT' 300 || return
	if ! grep -q 'MGRCLIENT-HOLDING' "$(console_log "$name")"; then
		xl domid mgr >/dev/null 2>&1 || return 1
		fail "$name failed: $(grep -m3 'FAIL' "$(console_log "$name")" | tr -d '\r' | tr '\n' ' ')"
	fi
	log "$name: $(grep -m1 -o -E 'MGRCLIENT-(CONNECTED|FIGURE connect_ms).*' "$(console_log "$name")" | tr -d '\r')"
}

# client_wait NAME PATTERN SECS: wait until the client NAME's console
# matches PATTERN. Returns 2 when the client is gone with a triple fault
# bearing the test bed's mark (testbed_fault; the test bed loses clients
# to it, in Xen's code, while they connect or save), which is logged and
# answered for, the client's console log kept apart; fails otherwise.
client_wait() {
	local id rip
	id=$(xl domid "$1" 2>/dev/null)
	_wait_for "console of $1 matching '$2', or $1 gone" "$3" _console_or_gone "$1" "$2" &&
		grep -q -E -e "$2" "$(console_log "$1")" && return 0
	[ -n "$id" ] && rip=$(triple_fault "$id") && echo "$rip" | grep -q -E -e "$TESTBED_MARK" ||
		fail "$1 did not get to '$2': $(tail -n 3 "$(console_log "$1")" | tr -d '\r' | tr '\n' ' ')"
	log "$1 (domain $id) was lost to the test bed's nested SVM (RIP $rip)"
	_faults_answered
	xl destroy "$1" >/dev/null 2>&1
	wait_gone "$1" 60 || fail "$1 did not go away"
	keep_log "$1" "faulted-$id" >/dev/null
	return 2
}
