# Self-test of the test bed: a busybox Linux domU boots as PVH and another as PV, each
# runs its init (seen on its xenconsoled log), reports the mode it booted in, and powers
# off. Sourced by dom0's init with the helpers of testlib.sh loaded.

xl info | grep -E '^(xen_version|virt_caps|nr_cpus|free_memory)'

# Both domains are created before waiting, so their boots overlap.
xl_create pvh.cfg || fail "xl create pvh.cfg failed"
xl_create pv.cfg || fail "xl create pv.cfg failed"
xl list

for dom in pvh pv; do
	wait_console "$dom" 'GUEST-INIT-RAN' 240 || fail "$dom guest: init did not report on its console"
	grep -qF "GUEST-TYPE=[$dom]" "$(console_log "$dom")" ||
		fail "$dom guest: booted as '$(grep -o 'GUEST-TYPE=.*' "$(console_log "$dom")")', not $dom"
	log "$dom guest booted as $dom"
done
for dom in pvh pv; do
	# Under a loaded host a halted PV guest has been seen to take over a
	# minute to be torn down; its state is in the failure message.
	wait_gone "$dom" 150 || fail "$dom guest: still running after powering off: $(xl list "$dom" 2>&1 | tail -n 1)"
done

pass "PVH and PV Linux guests booted, ran init and powered off"
