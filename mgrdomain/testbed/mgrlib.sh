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
# test bed's loss, reported with a TESTBED-FAULT line, when Xen reports a
# triple fault that testbed_lost calls the test bed's (at one of the
# image's hypercall returns, or in Xen's code: the manager has been lost
# both ways on QEMU 7.2 and 10.0 alike); any other end fails.
mgr_lost() {
	local rip m
	xl domid mgr >/dev/null 2>&1 && return 1
	m=$(console_log mgr)
	rip=$(triple_fault "$1") || fail "the manager (domain $1) is gone, without a triple fault: $(tail -n 3 "$m" | tr -d '\r' | tr '\n' ' ')"
	testbed_lost "$1" ||
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
		_domain_gone mgr && return 1
		fail "xl create $name ($n vtpm devices) failed"
	fi
	log "FIGURE xl create $name with $n vtpm devices: $(elapsed "$t0")s"
	client_wait "$name" 'MGRCLIENT-HOLDING|MGRCLIENT-RESULT' 300 || return
	if ! grep -q 'MGRCLIENT-HOLDING' "$(console_log "$name")"; then
		_domain_gone mgr && return 1
		fail "$name failed: $(grep -m3 'FAIL' "$(console_log "$name")" | tr -d '\r' | tr '\n' ' ')"
	fi
	log "$name: $(grep -m1 -o -E 'MGRCLIENT-(CONNECTED|FIGURE connect_ms).*' "$(console_log "$name")" | tr -d '\r')"
}

# client_wait NAME PATTERN SECS: wait until the client NAME's console
# matches PATTERN. Returns 2 when the client is gone with a triple fault
# testbed_lost calls the test bed's (it has lost clients in Xen's code
# while they connected or saved), dropped with drop_faulted; fails
# otherwise.
client_wait() {
	local id rip
	id=$(xl domid "$1" 2>/dev/null)
	console_or_gone "$1" "$2" "$3" && return 0
	[ -n "$id" ] && rip=$(triple_fault "$id") && testbed_lost "$id" ||
		fail "$1 did not get to '$2': $(tail -n 3 "$(console_log "$1")" | tr -d '\r' | tr '\n' ' ')"
	drop_faulted "$1" "$id" "$rip" "the test bed's nested SVM" || fail "$1 did not go away"
	return 2
}
