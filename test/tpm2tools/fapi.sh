#!/bin/bash
# FAPI flows (tpm2-tss 3.2 tss2_* tools) against the TPM at $FAPI_TCTI
# (e.g. swtpm:host=127.0.0.1,port=N), printing FLOW lines as flows.sh
# does. Provisions once, with the given FAPI profile (default
# P_ECCP256SHA256) and no EK certificate, with keystore and logs under
# the current directory. Usage: fapi.sh [PROFILE], in an empty directory.
set -uo pipefail
. "$(dirname "$0")/flowlib.sh"

profile=${1:-P_ECCP256SHA256}
top=$PWD
mkdir -p user system log
cat >fapi-config.json <<EOF
{
  "profile_name": "$profile",
  "profile_dir": "/etc/tpm2-tss/fapi-profiles/",
  "user_dir": "$top/user",
  "system_dir": "$top/system",
  "tcti": "$FAPI_TCTI",
  "system_pcrs": [],
  "log_dir": "$top/log",
  "ek_cert_less": "yes"
}
EOF
export TSS2_FAPICONF=$top/fapi-config.json
export TSS2_LOG=all+none

T() {
	"$@" >out.txt 2>err.txt || tool_failed "$1" first
}

flow_fapi_provision() {
	T tss2_provision
}

flow_fapi_sign() {
	T tss2_createkey -p /HS/SRK/sign1 -t sign -a ""
	head -c 32 /dev/urandom >digest.bin
	T tss2_sign -p /HS/SRK/sign1 -d digest.bin -o sig.bin -k pub.pem -f
	T tss2_verifysignature -p /HS/SRK/sign1 -d digest.bin -i sig.bin
	head -c 32 /dev/zero >other.bin
	check eval '! tss2_verifysignature -p /HS/SRK/sign1 -d other.bin -i sig.bin >/dev/null 2>&1' "signature verified over another digest"
	T tss2_setappdata -p /HS/SRK/sign1 -i digest.bin
	T tss2_getappdata -p /HS/SRK/sign1 -o app.bin -f
	check cmp -s app.bin digest.bin "appdata differs"
	T tss2_delete -p /HS/SRK/sign1
}

flow_fapi_seal() {
	echo -n "fapi secret" >secret.bin
	T tss2_createseal -p /HS/SRK/seal1 -t noda -a "" -i secret.bin
	T tss2_unseal -p /HS/SRK/seal1 -o got.bin -f
	check cmp -s got.bin secret.bin "unsealed data differs"
	T tss2_delete -p /HS/SRK/seal1
}

flow_fapi_seal_pcr_policy() {
	cat >pol.json <<'EOF'
{ "description": "PCR 16 as it is now", "policy": [ { "type": "POLICYPCR", "currentPCRs": [ 16 ] } ] }
EOF
	T tss2_import -p /policy/pcr16 -i pol.json
	echo -n "pcr secret" >secret.bin
	T tss2_createseal -p /HS/SRK/seal2 -t noda -a "" -P /policy/pcr16 -i secret.bin
	T tss2_unseal -p /HS/SRK/seal2 -o got.bin -f
	check cmp -s got.bin secret.bin "unsealed data differs"
	T tss2_pcrextend -x 16 -i secret.bin
	check eval '! tss2_unseal -p /HS/SRK/seal2 -o got2.bin -f >/dev/null 2>&1' "unsealed after PCR 16 changed"
	T tss2_delete -p /HS/SRK/seal2
}

flow_fapi_nv() {
	T tss2_createnv -p /nv/Owner/nv1 -t noda -s 16 -a ""
	echo -n "0123456789abcdef" >d.bin
	T tss2_nvwrite -p /nv/Owner/nv1 -i d.bin
	T tss2_nvread -p /nv/Owner/nv1 -o got.bin -f
	check cmp -s got.bin d.bin "NV data differs"
	T tss2_delete -p /nv/Owner/nv1
}

flow_fapi_quote() {
	echo -n "event" >ev.bin
	echo '{ "test": "event" }' >evlog.json
	T tss2_pcrextend -x 16 -i ev.bin --logData=evlog.json
	T tss2_createkey -p /HS/SRK/ak1 -t "sign,restricted,noda" -a ""
	head -c 20 /dev/urandom >nonce.bin
	T tss2_quote -p /HS/SRK/ak1 -x 16 -Q nonce.bin -o sig.bin -q quote.json -l log.json -f
	T tss2_verifyquote -k /HS/SRK/ak1 -Q nonce.bin -q quote.json -i sig.bin -l log.json
	T tss2_delete -p /HS/SRK/ak1
}

flow_fapi_exportkey() {
	# FAPI ExportKey: policy-based duplication to a public-only parent.
	T tss2_createkey -p /HS/SRK/np -t "decrypt,restricted,noda" -a ""
	T tss2_exportkey -p /HS/SRK/np -o np.json -f
	T tss2_import -p /ext/np -i np.json
	cat >dup.json <<'EOF'
{ "description": "duplicable to /ext/np", "policy": [ { "type": "POLICYDUPLICATIONSELECT", "newParentPath": "/ext/np" } ] }
EOF
	T tss2_import -p /policy/dup -i dup.json
	T tss2_createkey -p /HS/SRK/dupkey -t "sign,noda,exportable" -P /policy/dup -a ""
	T tss2_exportkey -p /HS/SRK/dupkey -e /ext/np -o exported.json -f
	check grep -q duplicate exported.json "no duplicate in the export"
	T tss2_delete -p /HS/SRK/dupkey
	T tss2_delete -p /HS/SRK/np
	T tss2_delete -p /ext/np
}

ALL="fapi_provision fapi_sign fapi_seal fapi_seal_pcr_policy fapi_nv fapi_quote fapi_exportkey"
# FAPI flushes what it loads unless it fails midway; without a resource
# manager the next flow would find the TPM full.
flush() { TPM2TOOLS_TCTI=$FAPI_TCTI tpm2_flushcontext -t >/dev/null 2>&1; }
for f in ${FLOWS:-$ALL}; do
	if ! run_flow "$f" flush && [[ $f == fapi_provision ]]; then
		for g in ${FLOWS:-$ALL}; do [[ $g == fapi_provision ]] || echo "FLOW $g FAIL not provisioned"; done
		break
	fi
done
