#!/bin/bash
# User flows with tpm2-tools 5.4 against the TPM at $TPM2TOOLS_TCTI, one
# named flow per TPM feature class. Every flow prints one line:
#
#	FLOW <name> ok
#	FLOW <name> FAIL <tool> rc=0x<response code>   (a TPM error)
#	FLOW <name> FAIL check: <what>                 (a wrong result)
#
# cmd/vtpmd's TestFlows runs the same script against swtpm and against
# vtpmd over both protocols and compares the lines. Usage:
# flows.sh [FLOW...] (all flows without arguments), run in an empty
# directory. There is no resource manager: each flow works in its own
# directory and everything loaded is flushed after it.
# Needs tpm2-tools 5.4, xxd and openssl.
set -uo pipefail
. "$(dirname "$0")/flowlib.sh"

# T TOOL ARGS...: runs a tool with its output in out.txt and err.txt; a
# failure ends the flow with the tool's name and the TPM response code.
T() {
	if "$@" >out.txt 2>err.txt; then
		flush_objects "$@"
		return 0
	fi
	tool_failed "$1" last
}
# flush_objects TOOL ARGS...: swtpm has room for three loaded objects, and
# a tool leaves what it loaded in the TPM: after tools that create or load
# objects (object contexts are *.ctx files, sessions *.sess) the
# transient objects are flushed.
flush_objects() {
	case $1 in
	tpm2_createprimary | tpm2_loadexternal) ;;
	*) [[ " $* " == *".ctx "* ]] || return 0 ;;
	esac
	tpm2_flushcontext -t >/dev/null 2>&1
	true
}
same() { cmp -s "$1" "$2"; }
# raw NAME TAG CC BODY: sends command NAME given in hex (for commands
# tpm2-tools 5.4 has no tool for) and leaves the response in rsp.bin and
# its code in $RC.
raw() {
	local n=$((10 + ${#4} / 2))
	printf '%s%08x%s%s' "$2" "$n" "$3" "$4" | xxd -r -p >cmd.bin
	T tpm2_send -o rsp.bin <cmd.bin
	RC=0x$(xxd -p -s 6 -l 4 rsp.bin)
}
# raw_ok NAME TAG CC BODY: raw, and the command must succeed.
raw_ok() {
	raw "$@"
	if ((RC != 0)); then
		printf '%s rc=0x%x\n' "$1" "$RC" >.fail
		exit 1
	fi
}
# The empty password session of a command in hex.
PWSESS=00000009400000090000000000
hexof() { xxd -p "$1" | tr -d '\n'; }
flushall() {
	tpm2_flushcontext -t >/dev/null 2>&1
	tpm2_flushcontext -l >/dev/null 2>&1
	tpm2_flushcontext -s >/dev/null 2>&1
	true
}
prim() { T tpm2_createprimary -C o -g sha256 -G ecc -c prim.ctx; }
# trial POLICYCMD...: policy digest file pol.dig of one policy command.
trial() {
	T tpm2_startauthsession -S trial.sess
	T "$@" -S trial.sess -L pol.dig
	T tpm2_flushcontext trial.sess
}
seal() { # seal SECRET POLICYFILE [AUTH]: sealed object seal.ctx under prim.ctx
	local auth=()
	[[ $# -gt 2 ]] && auth=(-p "$3")
	echo -n "$1" >secret.txt
	T tpm2_create -C prim.ctx -u seal.pub -r seal.priv -i secret.txt -L "$2" -a "fixedtpm|fixedparent" "${auth[@]}"
	T tpm2_load -C prim.ctx -u seal.pub -r seal.priv -c seal.ctx
}
policy_session() { T tpm2_startauthsession --policy-session -S s.sess; }

flow_policypassword_unseal() {
	prim
	trial tpm2_policypassword
	seal "s3cret" pol.dig pw
	policy_session
	T tpm2_policypassword -S s.sess
	T tpm2_unseal -c seal.ctx -p session:s.sess+pw -o got.txt
	check same got.txt secret.txt "unsealed data differs"
	T tpm2_flushcontext s.sess
	# A wrong password fails in the same policy.
	policy_session
	T tpm2_policypassword -S s.sess
	check eval '! tpm2_unseal -c seal.ctx -p session:s.sess+bad >/dev/null 2>&1' "unseal with a wrong password succeeded"
}

flow_policypassword_sign() {
	prim
	trial tpm2_policypassword
	T tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256 -u k.pub -r k.priv -L pol.dig -p pw -a "fixedtpm|fixedparent|sensitivedataorigin|sign"
	T tpm2_load -C prim.ctx -u k.pub -r k.priv -c k.ctx
	echo -n "message" >msg
	policy_session
	T tpm2_policypassword -S s.sess
	T tpm2_sign -c k.ctx -p session:s.sess+pw -g sha256 -o sig msg
	T tpm2_verifysignature -c k.ctx -g sha256 -m msg -s sig
}

flow_policyauthorizenv() {
	prim
	local nv=0x01500100
	T tpm2_nvdefine -C o -p nvpass -a "authread|authwrite" -s 34 $nv
	trial tpm2_policypassword
	{ printf '\x00\x0b'; cat pol.dig; } >ha.bin
	T tpm2_nvwrite -C $nv -P nvpass -i ha.bin $nv
	T tpm2_startauthsession -S trial.sess
	T tpm2_policyauthorizenv -S trial.sess -C $nv -P nvpass -L anv.dig $nv
	T tpm2_flushcontext trial.sess
	seal "nvsecret" anv.dig pw
	policy_session
	T tpm2_policypassword -S s.sess
	T tpm2_policyauthorizenv -S s.sess -C $nv -P nvpass $nv
	T tpm2_unseal -c seal.ctx -p session:s.sess+pw -o got.txt
	check same got.txt secret.txt "unsealed data differs"
	T tpm2_flushcontext s.sess
	T tpm2_nvundefine -C o $nv
}

flow_policyor() {
	prim
	trial tpm2_policypassword
	mv pol.dig a.dig
	T tpm2_pcrread -o pcr.bin sha256:23
	trial tpm2_policypcr -l sha256:23 -f pcr.bin
	mv pol.dig b.dig
	T tpm2_startauthsession -S trial.sess
	T tpm2_policyor -S trial.sess -L or.dig -l sha256:a.dig,b.dig
	T tpm2_flushcontext trial.sess
	seal "orsecret" or.dig pw
	# Branch b (PCR 23 unchanged), then branch a.
	policy_session
	T tpm2_policypcr -S s.sess -l sha256:23 -f pcr.bin
	T tpm2_policyor -S s.sess -l sha256:a.dig,b.dig
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs (PCR branch)"
	T tpm2_flushcontext s.sess
	policy_session
	T tpm2_policypassword -S s.sess
	T tpm2_policyor -S s.sess -l sha256:a.dig,b.dig
	T tpm2_unseal -c seal.ctx -p session:s.sess+pw -o got.txt
	check same got.txt secret.txt "unsealed data differs (password branch)"
}

signer() {
	openssl genrsa -out signer.pem 2048 2>/dev/null
	openssl rsa -in signer.pem -pubout -out signer.pub.pem 2>/dev/null
	T tpm2_loadexternal -C o -G rsa -u signer.pub.pem -c signer.ctx -n signer.name
}

flow_policysigned_ticket() {
	prim
	signer
	local exp=FFFFFE0C # -500 s: a ticket is returned
	echo $exp | xxd -r -p | openssl dgst -sha256 -sign signer.pem -out sig0
	T tpm2_startauthsession -S trial.sess
	T tpm2_policysigned -S trial.sess -g sha256 -s sig0 -f rsassa -c signer.ctx -L pol.dig
	T tpm2_flushcontext trial.sess
	seal "signedsecret" pol.dig
	policy_session
	T tpm2_policysigned -S s.sess -g sha256 -c signer.ctx -x -t -500 --raw-data tosign.bin
	openssl dgst -sha256 -sign signer.pem -out sig1 tosign.bin
	T tpm2_policysigned -S s.sess -g sha256 -s sig1 -f rsassa -c signer.ctx -x -t -500 --ticket tic.ket --timeout time.out
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs (PolicySigned)"
	T tpm2_flushcontext s.sess
	policy_session
	T tpm2_policyticket -S s.sess -n signer.name --ticket tic.ket --timeout time.out
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs (PolicyTicket)"
}

# policysecret_ticket NONCE: PolicySecret(owner) with expiration -3600,
# with (-x) or without nonceTPM, and its ticket in a new session.
policysecret_ticket() {
	prim
	T tpm2_startauthsession -S trial.sess
	T tpm2_policysecret -S trial.sess -c o -L pol.dig
	T tpm2_flushcontext trial.sess
	seal "ticketsecret" pol.dig
	policy_session
	T tpm2_policysecret -S s.sess -c o ${1:-} -t -3600 --ticket tic.ket --timeout time.out
	T tpm2_flushcontext s.sess
	# The name of a hierarchy is its handle.
	printf '\x40\x00\x00\x01' >owner.name
	policy_session
	T tpm2_policyticket -S s.sess -n owner.name --ticket tic.ket --timeout time.out
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs"
}
flow_policysecret_ticket() { policysecret_ticket; }
flow_policysecret_ticket_nonce() { policysecret_ticket -x; }

flow_policysigned_nonce_less() {
	# PolicySigned with expiration -500 and no nonceTPM: the signature
	# covers the expiration alone.
	prim
	signer
	printf '\xff\xff\xfe\x0c' | openssl dgst -sha256 -sign signer.pem -out sig
	T tpm2_startauthsession -S trial.sess
	T tpm2_policysigned -S trial.sess -g sha256 -s sig -f rsassa -c signer.ctx -L pol.dig
	T tpm2_flushcontext trial.sess
	seal "signedsecret" pol.dig
	policy_session
	T tpm2_policysigned -S s.sess -g sha256 -s sig -f rsassa -c signer.ctx -t -500 --ticket tic.ket --timeout time.out
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs"
	T tpm2_flushcontext s.sess
	policy_session
	T tpm2_policyticket -S s.sess -n signer.name --ticket tic.ket --timeout time.out
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs (PolicyTicket)"
}

flow_policycountertimer() {
	prim
	trial tpm2_policycountertimer --ugt clock=0
	seal "ctsecret" pol.dig
	policy_session
	T tpm2_policycountertimer -S s.sess --ugt clock=0
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs"
	T tpm2_flushcontext s.sess
	# safe == 1 after an orderly start.
	policy_session
	T tpm2_policycountertimer -S s.sess safe
	T tpm2_flushcontext s.sess
	policy_session
	check eval '! tpm2_policycountertimer -S s.sess --ult clock=1 >/dev/null 2>&1' "clock < 1 held"
}

flow_policytemplate() {
	T tpm2_createprimary -C o -c p1.ctx --template-data template.data
	openssl dgst -sha256 -binary -out template.hash template.data
	T tpm2_flushcontext -t
	T tpm2_startauthsession -S trial.sess -g sha256
	T tpm2_policytemplate -S trial.sess -L pol.dig --template-hash template.hash
	T tpm2_flushcontext trial.sess
	T tpm2_setprimarypolicy -C o -g sha256 -L pol.dig
	T tpm2_startauthsession -S s.sess -g sha256 --policy-session
	T tpm2_policytemplate -S s.sess --template-hash template.hash
	T tpm2_createprimary -C o -c p2.ctx -P session:s.sess
	raw_ok SetPrimaryPolicy 8002 0000012e 40000001${PWSESS}00000010
}

flow_setprimarypolicy_sizes() {
	# An empty policy goes with TPM_ALG_NULL only (Part 3 §24.6: the
	# size must match the hash).
	raw SetPrimaryPolicy 8002 0000012e 40000001${PWSESS}0000000b
	check test "$RC" = 0x000001d5 "empty policy with SHA256 answered $RC"
	raw SetPrimaryPolicy 8002 0000012e 40000001${PWSESS}0004000000000010
	check test "$RC" = 0x000001d5 "4-octet policy with TPM_ALG_NULL answered $RC"
	raw_ok SetPrimaryPolicy 8002 0000012e 40000001${PWSESS}00000010
}

flow_clockrateadjust() {
	T tpm2_clockrateadjust ss
	T tpm2_clockrateadjust ff
	T tpm2_clockrateadjust s
	T tpm2_clockrateadjust f
	T tpm2_clockrateadjust fff
	T tpm2_clockrateadjust sss
	T tpm2_readclock
}

flow_command_audit() {
	prim
	T tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256 -u ak.pub -r ak.priv -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"
	T tpm2_load -C prim.ctx -u ak.pub -r ak.priv -c ak.ctx
	T tpm2_setcommandauditstatus -C o -g sha256
	T tpm2_setcommandauditstatus -C o TPM2_CC_GetRandom
	T tpm2_getrandom 8
	T tpm2_getcommandauditdigest -c ak.ctx -g sha256 -m att.msg -s att.sig -f plain
	check test "$(xxd -p -s 4 -l 2 att.msg)" = 8015 "not a command audit attestation"
	openssl dgst -sha256 -binary att.msg >att.dig
	T tpm2_readpublic -c ak.ctx -f pem -o ak.pem
	check eval 'openssl dgst -sha256 -verify ak.pem -signature att.sig att.msg >/dev/null' "attestation signature does not verify"
	T tpm2_setcommandauditstatus -C o -c TPM2_CC_GetRandom
}

flow_pcr_setauthvalue() {
	# PCR_SetAuthValue(20, "hi"), PCR_Event with it, then back to empty.
	raw_ok PCR_SetAuthValue 8002 00000183 00000014${PWSESS}00026869
	# PCR 20 takes extends from localities the TCTIs cannot select; the
	# command itself is authorized with the PCR's authValue.
	raw PCR_SetAuthValue 8002 00000183 000000140000000b400000090000000002787800027878
	check test "$RC" = 0x000009a2 "PCR_SetAuthValue with a wrong PCR auth answered $RC"
	raw_ok PCR_SetAuthValue 8002 00000183 000000140000000b40000009000000000268690000
}

flow_pcr_setauthpolicy() {
	# PCR_SetAuthPolicy(platform, PolicyPassword digest, sha256, PCR 20)
	# and back to none; PCR 16 is in no policy group, and the digest must
	# match the hash. (tpm2-tools cannot name a PCR as a policy's object.)
	trial tpm2_policypassword
	raw_ok PCR_SetAuthPolicy 8002 0000012c "4000000c${PWSESS}0020$(hexof pol.dig)000b00000014"
	raw PCR_SetAuthPolicy 8002 0000012c "4000000c${PWSESS}0020$(hexof pol.dig)000b00000010"
	check test "$RC" = 0x000003c4 "policy on PCR 16 answered $RC"
	raw PCR_SetAuthPolicy 8002 0000012c "4000000c${PWSESS}0020$(hexof pol.dig)000400000014"
	check test "$RC" = 0x000001d5 "SHA-1 policy of 32 octets answered $RC"
	raw_ok PCR_SetAuthPolicy 8002 0000012c 4000000c${PWSESS}0000001000000014
}

flow_geteccparameters() {
	T tpm2_geteccparameters ecc256 -o p256.bin
	check test "$(stat -c %s p256.bin)" -gt 200 "ECC parameters too short"
	T tpm2_geteccparameters ecc384 -o p384.bin
}

flow_ecephemeral_zgen2phase() {
	prim
	T tpm2_create -C prim.ctx -c key.ctx -u key.pub -r key.priv -G ecc256:ecdh
	T tpm2_ecephemeral -u ecc.q -t ecc.ctr ecc256
	T tpm2_ecdhkeygen -u ecdh.pub -o ecdh.priv -c key.ctx
	T tpm2_zgen2phase -c key.ctx --static-public ecdh.pub --ephemeral-public ecc.q -t $((0x$(xxd -p ecc.ctr))) --output-Z1 z1.bin --output-Z2 z2.bin
}

flow_ecdaa_commit() {
	prim
	T tpm2_create -C prim.ctx -c key.ctx -u key.pub -r key.priv -G ecc256:ecdaa
	T tpm2_commit -c key.ctx -t count.er --eccpoint-K K.bin --eccpoint-L L.bin -u E.bin
}

# dup_setup: a duplicable key (policy: PolicyCommandCode(Duplicate)) under
# prim.ctx, and a storage key np as the new parent: loaded with its private
# part (np.ctx, for the import) and as a public-only object (npx.ctx).
dup_setup() {
	prim
	trial tpm2_policycommandcode TPM2_CC_Duplicate
	T tpm2_create -C prim.ctx -g sha256 -G rsa -p foo -r key.prv -u key.pub -L pol.dig -a "sensitivedataorigin|userwithauth|decrypt|sign"
	T tpm2_load -C prim.ctx -r key.prv -u key.pub -c key.ctx
	T tpm2_create -C prim.ctx -g sha256 -G rsa -r np.prv -u np.pub -a "restricted|sensitivedataorigin|decrypt|userwithauth|fixedtpm|fixedparent"
	T tpm2_load -C prim.ctx -r np.prv -u np.pub -c np.ctx
	T tpm2_loadexternal -C n -u np.pub -c npx.ctx
	echo -n "meet me at noon" >file.txt
	T tpm2_sign -c key.ctx -p foo -g sha256 -o sig.orig file.txt
}
dup_check() {
	T tpm2_load -C np.ctx -u key.pub -r key.new -c key2.ctx
	T tpm2_sign -c key2.ctx -p foo -g sha256 -o sig.new file.txt
	T tpm2_verifysignature -c key.ctx -g sha256 -m file.txt -s sig.new
}

flow_duplicate_public_parent() {
	dup_setup
	policy_session
	T tpm2_policycommandcode -S s.sess TPM2_CC_Duplicate
	T tpm2_duplicate -C npx.ctx -c key.ctx -G null -p session:s.sess -r dup.priv -s dup.seed
	T tpm2_flushcontext s.sess
	T tpm2_import -C np.ctx -u key.pub -i dup.priv -r key.new -s dup.seed
	dup_check
}

flow_duplicate_inner_wrapper() {
	dup_setup
	policy_session
	T tpm2_policycommandcode -S s.sess TPM2_CC_Duplicate
	T tpm2_duplicate -C npx.ctx -c key.ctx -G aes -o inner.key -p session:s.sess -r dup.priv -s dup.seed
	T tpm2_flushcontext s.sess
	T tpm2_import -C np.ctx -u key.pub -i dup.priv -r key.new -s dup.seed -k inner.key
	dup_check
}

flow_rewrap() {
	# Duplicate under the loaded parent np, Rewrap (no tool in 5.4) from
	# np to the public-only np2, import and load under np2. Rewrap's
	# handles are given as persistent handles.
	dup_setup
	T tpm2_create -C prim.ctx -g sha256 -G rsa -r np2.prv -u np2.pub -a "restricted|sensitivedataorigin|decrypt|userwithauth|fixedtpm|fixedparent"
	T tpm2_load -C prim.ctx -r np2.prv -u np2.pub -c np2.ctx
	T tpm2_loadexternal -C n -u np2.pub -c np2x.ctx
	policy_session
	T tpm2_policycommandcode -S s.sess TPM2_CC_Duplicate
	T tpm2_duplicate -C np.ctx -c key.ctx -G null -p session:s.sess -r dup.priv -s dup.seed
	T tpm2_flushcontext s.sess
	T tpm2_readpublic -c key.ctx -n key.name
	# Load np and np2x and learn their handles.
	tpm2_flushcontext -t
	check eval 'tpm2_readpublic -c np.ctx >/dev/null 2>&1' "np does not load"
	local old new
	old=$(tpm2_getcap handles-transient | grep -oE '0x8[0-9a-fA-F]{7}')
	check eval 'tpm2_readpublic -c np2x.ctx >/dev/null 2>&1' "np2x does not load"
	new=$(tpm2_getcap handles-transient | grep -oE '0x8[0-9a-fA-F]{7}' | grep -v "$old")
	check test -n "$old" -a -n "$new" "transient handles '$old' '$new'"
	raw Rewrap 8002 00000152 "${old#0x}${new#0x}${PWSESS}$(hexof dup.priv)$(printf %04x "$(stat -c %s key.name)")$(hexof key.name)$(hexof dup.seed)"
	tpm2_flushcontext -t
	if ((RC != 0)); then
		printf 'Rewrap rc=0x%x\n' "$RC" >.fail
		exit 1
	fi
	# outDuplicate and outSymSeed follow the parameter size.
	local n m
	n=$((0x$(xxd -p -s 14 -l 2 rsp.bin)))
	m=$((0x$(xxd -p -s $((16 + n)) -l 2 rsp.bin)))
	dd if=rsp.bin of=dup2.priv bs=1 skip=14 count=$((2 + n)) status=none
	dd if=rsp.bin of=dup2.seed bs=1 skip=$((16 + n)) count=$((2 + m)) status=none
	T tpm2_import -C np2.ctx -u key.pub -i dup2.priv -r key.new -s dup2.seed
	T tpm2_load -C np2.ctx -u key.pub -r key.new -c key2.ctx
	T tpm2_sign -c key2.ctx -p foo -g sha256 -o sig.new file.txt
	T tpm2_verifysignature -c key.ctx -g sha256 -m file.txt -s sig.new
}

flow_evictcontrol_external() {
	# A public-only object cannot be made persistent: TPM_RC_ATTRIBUTES
	# on the object handle comes before the hierarchy check.
	signer
	check eval '! tpm2_evictcontrol -C o -c signer.ctx 0x81000203 2>err.txt' "public-only object made persistent"
	check grep -q "(0x282)" err.txt "EvictControl of a public-only object: $(grep -oE '\(0x[0-9A-Fa-f]+\) -' err.txt)"
}

flow_rsaencrypt_null() {
	prim
	T tpm2_create -C prim.ctx -G rsa2048:null:null -u k.pub -r k.priv -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt"
	T tpm2_load -C prim.ctx -u k.pub -r k.priv -c k.ctx
	{ printf '\x00'; head -c 255 /dev/zero | tr '\0' 'x'; } >msg
	T tpm2_rsaencrypt -c k.ctx -s null -o ct msg
	T tpm2_rsadecrypt -c k.ctx -s null -o pt ct
	check same pt msg "decrypted data differs"
}

flow_nv_pinpass() {
	local nv=0x01500110
	# pinpass|ownerwrite|ownerread|authread
	T tpm2_nvdefine -C o -p pin -s 8 -a 0x60092 $nv
	# pinCount 0, pinLimit 5
	printf '\x00\x00\x00\x00\x00\x00\x00\x05' >pin.bin
	T tpm2_nvwrite -C o -i pin.bin $nv
	T tpm2_startauthsession --policy-session -S s.sess
	T tpm2_policysecret -S s.sess -c $nv pin
	T tpm2_flushcontext s.sess
	T tpm2_nvread -C o -s 8 -o got.bin $nv
	check test "$(xxd -p got.bin)" = 0000000100000005 "pinCount not counted"
	T tpm2_nvundefine -C o $nv
}

flow_nv_pinfail() {
	local nv=0x01500111
	# pinfail|ownerwrite|ownerread|authread|no_da
	T tpm2_nvdefine -C o -p pin -s 8 -a 0x2060082 $nv
	printf '\x00\x00\x00\x00\x00\x00\x00\x05' >pin.bin
	T tpm2_nvwrite -C o -i pin.bin $nv
	T tpm2_startauthsession --policy-session -S s.sess
	check eval '! tpm2_policysecret -S s.sess -c '$nv' wrong >/dev/null 2>&1' "PolicySecret with a wrong PIN succeeded"
	T tpm2_policysecret -S s.sess -c $nv pin
	T tpm2_flushcontext s.sess
	T tpm2_nvread -C o -s 8 -o got.bin $nv
	check test "$(xxd -p got.bin)" = 0000000000000005 "pinCount not reset by the right PIN"
	T tpm2_nvundefine -C o $nv
}

flow_nv_platform_undefine() {
	local nv=0x01400100
	T tpm2_nvdefine -C p -s 8 -a "platformcreate|ppwrite|ppread|authread|authwrite" $nv
	echo -n 12345678 >d.bin
	T tpm2_nvwrite -C p -i d.bin $nv
	T tpm2_nvread -C p -s 8 -o got.bin $nv
	check same got.bin d.bin "NV data differs"
	T tpm2_nvundefine -C p $nv
}

flow_nv_undefinespecial() {
	local nv=0x01400101
	trial tpm2_policycommandcode TPM2_CC_NV_UndefineSpaceSpecial
	T tpm2_nvdefine -C p -s 8 -a "platformcreate|ppwrite|ppread|authread|authwrite|policydelete" -L pol.dig $nv
	policy_session
	T tpm2_policycommandcode -S s.sess TPM2_CC_NV_UndefineSpaceSpecial
	T tpm2_nvundefine -C p -S s.sess $nv
	check eval '! tpm2_nvreadpublic '$nv' >/dev/null 2>&1' "index still defined"
}

flow_policynv_signed() {
	prim
	local nv=0x01500120
	T tpm2_nvdefine -C o -p nvpw -a "authread|authwrite" -s 4 $nv
	printf '\xff\xff\xff\xf0' >v.bin # -16 as a signed number
	T tpm2_nvwrite -C $nv -P nvpw -i v.bin $nv
	printf '\x00\x00\x00\x01' >op.bin
	T tpm2_startauthsession -S trial.sess
	T tpm2_policynv -S trial.sess -C $nv -P nvpw -i op.bin -L pol.dig $nv slt
	T tpm2_flushcontext trial.sess
	seal "nvcmp" pol.dig
	policy_session
	T tpm2_policynv -S s.sess -C $nv -P nvpw -i op.bin $nv slt
	T tpm2_unseal -c seal.ctx -p session:s.sess -o got.txt
	check same got.txt secret.txt "unsealed data differs"
	T tpm2_flushcontext s.sess
	# Unsigned, 0xfffffff0 < 1 is false.
	policy_session
	check eval '! tpm2_policynv -S s.sess -C '$nv' -P nvpw -i op.bin '$nv' ult >/dev/null 2>&1' "unsigned comparison passed"
	T tpm2_flushcontext s.sess
	T tpm2_nvundefine -C o $nv
}

flow_getcap_algs_filtered() {
	# GetCapability(ALGS, from TPM_ALG_SHA256, 2): the list starts at SHA256.
	raw_ok GetCapability 8001 0000017a 000000000000000b00000002
	check test "$(xxd -p -s 19 -l 2 rsp.bin)" = 000b "first algorithm is not SHA256"
	check test "$(xxd -p -s 15 -l 4 rsp.bin)" = 00000002 "not two algorithms"
}

flow_pcrallocate() {
	T tpm2_pcrallocate sha256:all+sha1:all
}

ALL="policypassword_unseal policypassword_sign policyauthorizenv policyor policysigned_ticket
policysecret_ticket policysecret_ticket_nonce policysigned_nonce_less policycountertimer policytemplate setprimarypolicy_sizes clockrateadjust command_audit pcr_setauthvalue pcr_setauthpolicy
geteccparameters ecephemeral_zgen2phase ecdaa_commit duplicate_public_parent duplicate_inner_wrapper
rewrap evictcontrol_external rsaencrypt_null nv_pinpass nv_pinfail nv_platform_undefine nv_undefinespecial policynv_signed
getcap_algs_filtered pcrallocate"

# FLOWS_SHARD=i/n runs every n-th flow from the i-th (0-based), for
# running parts of the list on TPMs of their own at the same time.
flows=${*:-$ALL}
if [[ -n ${FLOWS_SHARD:-} ]]; then
	i=0 sel=""
	for f in $flows; do
		((i % ${FLOWS_SHARD#*/} == ${FLOWS_SHARD%/*})) && sel="$sel $f"
		i=$((i + 1))
	done
	flows=$sel
fi

tpm2_startup -c >/dev/null 2>&1
top=$PWD
for f in $flows; do
	run_flow "$f" flushall
done
