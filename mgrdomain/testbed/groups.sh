# The manager's groups end to end (docs/manager-groups.md), on the hardware
# TPM family FAMILY (2.0 or 1.2), with dom0's `xenvtpm` as the
# administrator's tool: provisioning a fresh manager with an SAA key, an
# approval list for the host's current PCRs and a vTPM; autocreate=0
# refusing an unknown vTPM; the key persisting; a running vTPM not
# deleted; an upgrade (the SAA approves the configuration a new firmware
# measurement gives, the administrator installs it, the "host" boots it:
# dom0 extends PCR 16) with an older list and another key's list refused;
# a stopped vTPM deleted and then unknown; then the old configuration
# refused, and the old disk copy refused (REVOKED on TPM 2.0: the TPM
# itself refuses the older list; ROLLBACK on TPM 1.2, which cannot revoke
# a sealed blob).
# Sourced by the scenario's dom0-test.sh after mgrlib.sh, with FAMILY,
# MGR_EXTRA (owner/SRK secrets) and SAA_ALG set and no manager running.

X=/tmp/xenvtpm
gunzip -c /test/xenvtpm.gz >$X && chmod 755 $X || fail "cannot unpack xenvtpm"
U=6d677274-6573-7400-8000-000000000001 # client.cfg's uuid
UNKNOWN=6d677274-6573-7400-8000-0000000000ff
if [ "$FAMILY" = 2.0 ]; then NEWFW=$(printf 'fe%.0s' $(seq 32)); else NEWFW=$(printf 'fe%.0s' $(seq 20)); fi

# gstart TAG: start the manager (autocreate=0) on /tmp/mgr.img; it must
# serve. grefused TAG ERE: it must refuse with ERE.
gstart() {
	t0=$(now)
	create mgr.cfg mgr "extra=\"$MGR_EXTRA autocreate=0\"" || fail "xl create mgr.cfg ($1) failed"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	m=$(console_log mgr)
	grep -q 'serving vTPM domains' "$m" || fail "manager ($1) refused: $(grep -m1 'cannot start' "$m")"
	grep -m1 'manager open' "$m"
	log "FIGURE groups ($FAMILY) manager start ($1) xl create to serving: $(elapsed "$t0")s; in-domain: $(grep -m1 -o 'start-up took [^)]*' "$m")"
}
grefused() {
	create mgr.cfg mgr "extra=\"$MGR_EXTRA autocreate=0\"" || fail "xl create mgr.cfg ($1) failed"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	refused "groups-$1" "$2"
}
gstop() {
	xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
	ended mgr s 60 || { xl destroy mgr; fail "manager did not power off on xl shutdown ($1)"; }
	keep_log mgr "groups-$1" >/dev/null
}
# xv ARGS...: xenvtpm against the manager; its output is in $out.
xv() {
	out=$($X "$@" --manager mgr 2>&1)
}
# gclient TAG EXTRA [XL-ARGS...]: the test client; it must pass. A refused
# client is done before xl has returned, so the domain is not looked for
# after xl create (create() would take it for a failed start).
gclient() {
	tag=$1 extra=$2
	shift 2
	xl_create client.cfg "extra=\"$extra\"" "$@" || fail "xl create client.cfg ($tag) failed"
	wait_console client '^MGRCLIENT-RESULT' 240 || fail "client ($tag) did not finish"
	ended client "[sc]" 60 || fail "client ($tag) still running after its result"
	cl=$(keep_log client "groups-$tag")
	grep -q '^MGRCLIENT-RESULT PASS' "$cl" || fail "client ($tag): $(grep -m1 -e 'FAIL' "$cl")"
}
json() { # FIELD: a number or string field of $out
	echo "$out" | sed -n "s/^ *\"$1\": \"*\([^\",]*\)\"*,*\$/\1/p" | head -n 1
}

pcr_reset16 "$FAMILY"
# dom0 runs from RAM: the earlier steps' disk copies go, the groups' disk
# is small.
rm -f /tmp/mgr*.img && truncate -s 4M /tmp/mgr.img

# ---- provisioning from a fresh manager ----
gstart fresh
$X saa keygen --alg "$SAA_ALG" --out /tmp/saa >/dev/null || fail "saa keygen failed"
$X saa keygen --out /tmp/other >/dev/null || fail "saa keygen (other) failed"
t0=$(now)
xv group add --key /tmp/saa.pub --json || fail "group add: $out"
log "FIGURE groups ($FAMILY) group add: $(elapsed "$t0")s"
[ "$(json group)" = 0 ] || fail "the first group add did not give group 0 its SAA: $out"
G=$(json uuid)
xv group show 0 --json || fail "group show: $out"
seq=$(json next_seq)
t0=$(now)
pcr_values "$FAMILY" 0 2 4 16 >/tmp/v1 || fail "reading PCRs 0,2,4,16 from dom0"
[ "$(wc -l </tmp/v1)" = 4 ] || fail "reading PCRs 0,2,4,16 from dom0: $(cat /tmp/v1)"
cat /tmp/v1
log "FIGURE groups ($FAMILY) reading 4 PCRs from dom0 through the TIS registers: $(elapsed "$t0")s"
sign() { # OUT SEQ KEY [--extend ...]
	o=$1 s=$2 k=$3
	shift 3
	$X saa sign-config --key "$k" --group-uuid "$G" --seq "$s" --family "$FAMILY" --pcrs 0,2,4,16 --values /tmp/v1 "$@" --out "$o" >/dev/null ||
		fail "saa sign-config $o failed"
}
sign /tmp/l1.cfg "$seq" /tmp/saa.key
t0=$(now)
xv group update 0 /tmp/l1.cfg || fail "group update (first list): $out"
log "FIGURE groups ($FAMILY) group update 0 (seals the storage key to the approvals): $(elapsed "$t0")s"
xv group show 0 --json || fail "group show: $out"
echo "$out" | grep -q '"sealed": true' || fail "group 0 not sealed to its approvals: $out"
echo "$out" | grep -q '"pcrs_match": true' || fail "group 0's approvals do not match the host: $out"
xv vtpm add 0 --uuid $U || fail "vtpm add: $out"
xv vtpm list 0 || fail "vtpm list: $out"
echo "$out" | grep -q $U || fail "vtpm list does not show $U: $out"
gclient save "rounds=3"
key=$(sed -n 's/^MGRCLIENT-SAVED \([0-9a-f]*\).*/\1/p' "$cl" | tr -d '\r')
[ ${#key} = 128 ] || fail "client did not report the saved key"

# ---- autocreate=0: an unknown vTPM is refused, with one console line ----
gclient unknown "refused=13" "vtpm=[\"backend=mgr,uuid=$UNKNOWN\"]"
n=$(grep -c "refused frontend .*$UNKNOWN.*not a vTPM of this manager" "$(console_log mgr)")
[ "$n" = 1 ] || fail "the unknown vTPM's refusal is on $n manager console lines, not 1"
log "unknown vTPM refused: $(grep -m1 -o 'refused frontend.*not a vTPM[^(]*' "$(console_log mgr)")"

# ---- a restart unseals under the approvals; the key persisted ----
gstop provisioned
gstart restart
grep -q "sealed to group 0's SAA-approved configurations" "$m" || fail "the manager does not say it is sealed to the approvals"
gclient load "save=0 expect=$key hold=20" &
wait_console client '^MGRCLIENT-HOLDING' 240 || fail "client (running) did not hold"
xv vtpm del $U && fail "vtpm del of a running vTPM succeeded"
echo "$out" | grep -q 'TPM_AREA_LOCKED' || fail "vtpm del of a running vTPM refused for another reason: $out"
log "vtpm del of a running vTPM: $out"
wait || fail "client (running) failed"

# ---- upgrade: the SAA approves the new firmware's configuration ----
sign /tmp/old.cfg "$seq" /tmp/saa.key --extend "16:$NEWFW"
xv group update 0 /tmp/old.cfg --no-check && fail "a list with the installed sequence number was installed"
echo "$out" | grep -q 'TPM_BAD_COUNTER' || fail "an older list refused for another reason: $out"
sign /tmp/bad.cfg $((seq + 1)) /tmp/other.key --extend "16:$NEWFW"
xv group update 0 /tmp/bad.cfg --no-check && fail "a list signed by another key was installed"
echo "$out" | grep -q 'TPM_AUTHFAIL' || fail "another key's list refused for another reason: $out"
cp /tmp/mgr.img /tmp/mgr-l1.img
sign /tmp/l2.cfg $((seq + 1)) /tmp/saa.key --extend "16:$NEWFW"
t0=$(now)
xv group update 0 /tmp/l2.cfg || fail "group update (upgrade): $out"
log "FIGURE groups ($FAMILY) group update 0 (upgrade: same SAA, new list): $(elapsed "$t0")s"
gstop upgrade-installed
pcr_extend16 "$FAMILY" "$NEWFW" # the host boots the new firmware
gstart new-firmware
gclient after-upgrade "save=0 expect=$key"

# ---- a stopped vTPM is deleted, and is then unknown ----
xv vtpm del $U || fail "vtpm del of a stopped vTPM: $out"
xv vtpm list 0 || fail "vtpm list: $out"
echo "$out" | grep -q $U && fail "vtpm list still shows the deleted vTPM: $out"
gclient deleted "refused=13"
gstop new-firmware

# ---- the old configuration: refused; the old disk copy too ----
pcr_reset16 "$FAMILY"
grefused old-configuration 'NOT APPROVED'
cp /tmp/mgr.img /tmp/mgr-cur.img
cp /tmp/mgr-l1.img /tmp/mgr.img
if [ "$FAMILY" = 2.0 ]; then
	grefused old-copy 'REVOKED'
else
	grefused old-copy 'ROLLBACK'
fi
rm -f /tmp/mgr*.img $X
