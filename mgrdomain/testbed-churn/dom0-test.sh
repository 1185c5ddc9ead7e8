# The manager through churn: a client domain connects 126 vtpm devices to
# it, each saves and loads its own key three times, and the domain is
# destroyed, round after round (16), while two more devices stay
# connected, so that the manager waits with Xen's callback vector set
# throughout (board/xen/pvh, idle). Every round must get its keys back,
# and the manager must then count only the two devices that stayed; a
# round whose client the test bed lost is run again. What the runtime has
# taken of the manager's RAM must not grow by a heap arena (4 MiB) from
# the second round to the last. A loss of the manager that mgr_lost calls
# the test bed's ends the rounds early and is reported; any other fails.
# Sourced by dom0's init with testlib.sh loaded.
. /test/mgrlib.sh

serve_mgr churn

# load: the manager's newest load line ("N vTPM devices; ... X MiB taken
# from the domain's RAM by the runtime"), logged every 5 s while it changes.
load() {
	grep 'load: ' "$m" | tail -n 1 | tr -d '\r' | sed 's/.*load: //'
}
devices() { load | sed -n 's/^\([0-9]*\) vTPM devices.*/\1/p'; }
taken() { load | sed -n 's/.* \([0-9.]*\) MiB taken .*/\1/p'; }

two_devices() { [ "$(devices)" = 2 ]; }
result_or_gone() { _console_or_gone c2 'MGRCLIENT-RESULT' || _domain_gone mgr; }

# round N: one round; 1 when the test bed lost the manager (mgr_lost), 2
# when it lost the client (client_wait), which the caller runs again.
round() {
	local c
	mgr_client c2 126 2 "devices=126 rounds=3 hold=1" || { mgr_lost "$mid" && return 1; return 2; }
	_wait_for "c2's result, or c2 or the manager gone" 300 result_or_gone
	mgr_lost "$mid" && return 1
	client_wait c2 'MGRCLIENT-RESULT' 1 || return 2
	c=$(console_log c2)
	if ! grep -q 'MGRCLIENT-RESULT PASS' "$c"; then
		mgr_lost "$mid" && return 1
		fail "round $1: $(grep -m3 'FAIL' "$c" | tr -d '\r' | tr '\n' ' ')"
	fi
	log "round $1: $(grep -m1 -o 'scale connections=.*' "$c" | tr -d '\r')"
	xl destroy c2 2>/dev/null
	wait_gone c2 60 || fail "round $1: c2 did not go away"
	keep_log c2 "round$1" >/dev/null
	mgr_lost "$mid" && return 1
	_wait_for "the manager counting 2 vTPM devices again" 30 two_devices ||
		fail "round $1: the manager still counts $(devices) vTPM devices after c2 was destroyed, want 2: $(load)"
}

mgr_client c1 1 1 "rounds=1 hold=3000" || fail "the test bed lost c1"
mgr_client c3 1 128 "rounds=1 hold=3000" || fail "the test bed lost c3"
rounds=16 i=0 served=0 again=0
t0=$(now)
while [ "$served" -lt "$rounds" ]; do
	i=$((served + 1))
	round "$i"
	case $? in
	0)
		served=$i
		last=$(taken)
		[ "$i" = 2 ] && taken2=$last
		;;
	1) break ;;
	*)
		again=$((again + 1))
		[ "$again" -le 3 ] || fail "the test bed lost the client in more than 3 rounds"
		;;
	esac
done
log "FIGURE churn: $served rounds of 126 devices connecting, saving and loading 3 times and going, in $(elapsed "$t0")s"
if [ "$served" -ge 3 ]; then
	log "FIGURE manager RAM taken by the runtime after round 2: $taken2 MiB; after round $served: $last MiB"
	awk -v a="$taken2" -v b="$last" 'BEGIN { exit !(b - a < 4) }' ||
		fail "what the manager's runtime has taken of its RAM grew from $taken2 MiB after round 2 to $last MiB after round $served"
fi
[ "$served" = "$rounds" ] ||
	pass "the manager served $served rounds of 126 devices, counting only the 2 that stayed after each, before the test bed lost it (round $i)"

# The two devices that stayed are still served.
for d in c1 c3; do
	xl domid "$d" >/dev/null 2>&1 || fail "$d is gone"
done
xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
ended mgr s 60 || { xl destroy mgr; fail "the manager did not power off on xl shutdown"; }
memory_figure "$(keep_log mgr churn)" "the manager" "manager memory at its shutdown, after $served rounds:"
pass "the manager served $served rounds of 126 devices connecting, saving, loading and going, and counted only the 2 that stayed after each"
