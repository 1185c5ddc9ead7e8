#!/bin/bash
# Scripted tpm2-tools (5.4) session against a TPM reachable through
# $TPM2TOOLS_TCTI (vtpmd: mssim:host=127.0.0.1,port=N). Every step checks
# the tool's output, not only its exit status. Run in an empty directory.
# Without a resource manager each tool leaves its objects loaded, so the
# script flushes transient objects and sessions after each step.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
flush() { tpm2_flushcontext -t >/dev/null 2>&1 || true; tpm2_flushcontext -s >/dev/null 2>&1 || true; }
# expect_rc CODE CMD...: CMD must fail and mention the TPM response code.
expect_rc() {
	local code=$1; shift
	local out
	if out=$("$@" 2>&1); then fail "$* succeeded, expected $code"; fi
	grep -qi -- "$code" <<<"$out" || fail "$* failed without $code: $out"
}
# has [-i] PATTERN CMD...: CMD succeeds and its output contains PATTERN.
# The output is searched once CMD has ended: piped into grep -q, a tool is
# killed by SIGPIPE when grep stops reading at the first match while the
# tool still writes (tpm2-tools write line by line), and pipefail makes
# that a failure.
has() {
	local opt=-q
	if [[ $1 == -i ]]; then opt=-qi; shift; fi
	local pat=$1 out; shift
	out=$("$@") || fail "$*: exit status $?"
	grep $opt -- "$pat" <<<"$out"
}

step startup
tpm2_startup -c

step getrandom
r=$(tpm2_getrandom --hex 16)
[[ $r =~ ^[0-9a-f]{32}$ ]] || fail "getrandom printed '$r'"

step getcap
for c in algorithms commands pcrs properties-fixed properties-variable ecc-curves handles-transient handles-persistent handles-permanent handles-pcr handles-nv-index handles-loaded-session handles-saved-session; do
	tpm2_getcap "$c" > "cap-$c.txt" || fail "getcap $c"
done
grep -q "TPM2_PT_FAMILY_INDICATOR" cap-properties-fixed.txt || fail "properties-fixed lacks FAMILY_INDICATOR"
grep -q 'value: "2.0"' cap-properties-fixed.txt || fail "family is not 2.0"
grep -q "TPM2_CC_CreatePrimary" cap-commands.txt || fail "commands lacks CreatePrimary"
grep -q "sha256" cap-pcrs.txt || fail "pcrs lacks sha256"
grep -q "TPM2_ECC_NIST_P256" cap-ecc-curves.txt || fail "ecc-curves lacks P256"
total=$(awk '/TPM2_PT_TOTAL_COMMANDS/{getline; print $2}' cap-properties-fixed.txt)
listed=$(grep -c "^TPM2_CC_" cap-commands.txt)
[[ $((total)) -eq $listed ]] || fail "TOTAL_COMMANDS $total != $listed listed commands"

step pcrread/pcrextend/pcrreset
has "16: 0x0000000000000000000000000000000000000000000000000000000000000000" tpm2_pcrread sha256:16 || fail "PCR16 not zero"
tpm2_pcrextend 16:sha256=0000000000000000000000000000000000000000000000000000000000000001
has -i "0x90F4B39548DF55AD6187A1D20D731ECEE78C545B94AFD16F42EF7592D99CD365" tpm2_pcrread sha256:16 || fail "PCR16 extend value"
tpm2_pcrreset 16
has "16: 0x0000000000000000000000000000000000000000000000000000000000000000" tpm2_pcrread sha256:16 || fail "PCR16 not reset"
expect_rc 0x907 tpm2_pcrreset 0

step hash
echo -n abc > abc.txt
has -i "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" tpm2_hash -g sha256 --hex abc.txt || fail "hash of abc"

step createprimary rsa/ecc
tpm2_createprimary -C o -G rsa -c prim-rsa.ctx > prim-rsa.txt
grep -q "rsa" prim-rsa.txt || fail "rsa primary output"
flush
tpm2_createprimary -C o -G ecc -c primary.ctx > primary.txt
grep -q "curve-id" primary.txt || fail "ecc primary output"
flush

step readpublic
tpm2_readpublic -c primary.ctx -o primary.pub > rp.txt
flush
n1=$(grep "^name:" rp.txt)
[[ $n1 =~ ^name:\ 000b[0-9a-f]{64}$ ]] || fail "readpublic name '$n1'"
grep -q "curve-id" rp.txt || fail "readpublic lacks the curve"
tpm2_createprimary -C o -G ecc -c primary2.ctx > /dev/null
flush
[[ "$n1" == "$(tpm2_readpublic -c primary2.ctx | grep "^name:")" ]] || fail "primary not deterministic"
flush

step create/load/sign/verifysignature
tpm2_create -C primary.ctx -G ecc256:ecdsa -u sign.pub -r sign.priv > /dev/null
flush
tpm2_load -C primary.ctx -u sign.pub -r sign.priv -c sign.ctx > /dev/null
flush
echo "message to sign" > msg.dat
tpm2_sign -c sign.ctx -g sha256 -o sig.bin msg.dat
flush
tpm2_verifysignature -c sign.ctx -g sha256 -m msg.dat -s sig.bin -t verify.tk
flush
echo "other message" > msg2.dat
expect_rc 0x2db tpm2_verifysignature -c sign.ctx -g sha256 -m msg2.dat -s sig.bin
flush

step rsa sign
tpm2_create -C primary.ctx -G rsa2048:rsassa -u rsign.pub -r rsign.priv > /dev/null
flush
tpm2_load -C primary.ctx -u rsign.pub -r rsign.priv -c rsign.ctx > /dev/null
flush
tpm2_sign -c rsign.ctx -g sha256 -o rsig.bin msg.dat
flush
tpm2_verifysignature -c rsign.ctx -g sha256 -m msg.dat -s rsig.bin
flush

step hmac
tpm2_create -C primary.ctx -G hmac -c hmac.ctx > /dev/null
flush
tpm2_hmac -c hmac.ctx --hex msg.dat > hmac1.txt
flush
tpm2_hmac -c hmac.ctx --hex msg.dat > hmac2.txt
flush
[[ -s hmac1.txt ]] && cmp -s hmac1.txt hmac2.txt || fail "hmac not stable"

step encryptdecrypt
tpm2_create -C primary.ctx -G aes128cfb -u aes.pub -r aes.priv > /dev/null
flush
tpm2_load -C primary.ctx -u aes.pub -r aes.priv -c aes.ctx > /dev/null
flush
echo "plaintext for aes" > plain.txt
tpm2_encryptdecrypt -c aes.ctx -o cipher.bin plain.txt
flush
tpm2_encryptdecrypt -d -c aes.ctx -o plain2.txt cipher.bin
flush
cmp -s plain.txt plain2.txt || fail "encryptdecrypt round trip"
cmp -s plain.txt cipher.bin && fail "ciphertext equals plaintext"

step quote/checkquote
tpm2_createek -c ek.ctx -G rsa -u ek.pub
flush
tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pub -n ak.name > /dev/null
flush
tpm2_quote -c ak.ctx -l sha256:0,1,2,16 -q abcdef -m quote.msg -s quote.sig -o quote.pcrs -g sha256 > quote.txt
flush
tpm2_checkquote -u ak.pub -m quote.msg -s quote.sig -f quote.pcrs -g sha256 -q abcdef > checkquote.txt
grep -q "sha256" checkquote.txt || fail "checkquote output"

step makecredential/activatecredential
echo -n "credential secret" > cred.in
tpm2_makecredential -T none -e ek.pub -s cred.in -n "$(xxd -p -c 256 ak.name)" -o cred.blob
tpm2_startauthsession --policy-session -S ek-session.ctx
tpm2_policysecret -S ek-session.ctx -c e > /dev/null
tpm2_activatecredential -c ak.ctx -C ek.ctx -i cred.blob -o cred.out -P "session:ek-session.ctx"
tpm2_flushcontext ek-session.ctx
flush
cmp -s cred.in cred.out || fail "activated credential differs"

step nv
tpm2_nvdefine 0x1500016 -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
head -c 32 /dev/urandom > nv.dat
tpm2_nvwrite 0x1500016 -C o -i nv.dat
flush
tpm2_nvread 0x1500016 -C o -s 32 -o nv.out
flush
cmp -s nv.dat nv.out || fail "nvread differs"
tpm2_nvundefine 0x1500016 -C o
flush
tpm2_nvdefine 0x1500017 -C o -s 8 -a "ownerread|ownerwrite|nt=counter"
tpm2_nvincrement 0x1500017 -C o
tpm2_nvincrement 0x1500017 -C o
flush
[[ "$(tpm2_nvread 0x1500017 -C o -s 8 | xxd -p)" == "0000000000000002" ]] || fail "counter is not 2"
flush
tpm2_nvundefine 0x1500017 -C o
tpm2_nvdefine 0x1500018 -C o -s 32 -a "ownerread|ownerwrite|nt=extend" -g sha256
echo -n "abc" > ext.dat
tpm2_nvextend 0x1500018 -C o -i ext.dat
flush
want=$( (head -c 32 /dev/zero; cat ext.dat) | sha256sum | cut -d' ' -f1)
[[ "$(tpm2_nvread 0x1500018 -C o -s 32 | xxd -p -c 64)" == "$want" ]] || fail "nvextend value"
flush
tpm2_nvundefine 0x1500018 -C o
flush

step seal with policypcr, unseal, refuse after extend
tpm2_startauthsession -S session.ctx
tpm2_policypcr -S session.ctx -l sha256:0,1,2 -L pcr.policy > /dev/null
tpm2_flushcontext session.ctx
echo -n "s3cret" > secret.dat
tpm2_create -C primary.ctx -L pcr.policy -i secret.dat -u seal.pub -r seal.priv -a "fixedtpm|fixedparent" > /dev/null
flush
tpm2_load -C primary.ctx -u seal.pub -r seal.priv -c seal.ctx > /dev/null
flush
[[ "$(tpm2_unseal -c seal.ctx -p pcr:sha256:0,1,2)" == "s3cret" ]] || fail "unseal"
flush
tpm2_pcrextend 1:sha256=0000000000000000000000000000000000000000000000000000000000000001
expect_rc 0x99d tpm2_unseal -c seal.ctx -p pcr:sha256:0,1,2
flush

step evictcontrol
tpm2_evictcontrol -C o -c primary.ctx 0x81000001 > evict.txt
flush
grep -q "persistent-handle: 0x81000001" evict.txt || fail "evictcontrol output"
has 0x81000001 tpm2_getcap handles-persistent || fail "persistent handle not listed"
has "$n1" tpm2_readpublic -c 0x81000001 || fail "persistent object name"
tpm2_evictcontrol -C o -c 0x81000001 > /dev/null
has 0x81000001 tpm2_getcap handles-persistent && fail "persistent handle still listed"

step changeauth
tpm2_changeauth -c o ownerpw
tpm2_createprimary -C o -P ownerpw -c p3.ctx > /dev/null
flush
expect_rc 0x9a2 tpm2_createprimary -C o -P wrong -c p4.ctx
flush
tpm2_changeauth -c o -p ownerpw

step dictionarylockout
tpm2_dictionarylockout -s -n 5 -t 6 -l 7
maxfail=$(tpm2_getcap properties-variable | grep -A1 TPM2_PT_MAX_AUTH_FAIL || true)
grep -q "0x5" <<<"$maxfail" || fail "max auth fail not 5"
tpm2_dictionarylockout -c

step clear
tpm2_clear -c l
tpm2_createprimary -C o -G ecc -c primary3.ctx > /dev/null
flush
[[ "$n1" != "$(tpm2_readpublic -c primary3.ctx | grep "^name:")" ]] || fail "SRK unchanged after clear"
flush

step flushcontext
tpm2_createprimary -C o -G ecc -c f.ctx > /dev/null
has 0x80 tpm2_getcap handles-transient || fail "no transient object loaded"
tpm2_flushcontext -t
[[ -z "$(tpm2_getcap handles-transient)" ]] || fail "transient objects left after flush"

echo "ALL OK"
