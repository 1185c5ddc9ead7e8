#!/usr/bin/env bash
# testlib-test.sh: checks of dom0's testlib.sh helpers that tell the test
# bed's faults apart and create domains, run on the host under busybox sh
# (dom0's shell) with a stand-in for xl: each case sets up the domains xl
# knows and what `xl dmesg` says, then checks what the helpers did.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v busybox >/dev/null || { echo "SKIP: busybox is not installed"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# run NAME SCRIPT: run SCRIPT under busybox sh after testlib.sh and the xl
# stand-in, in a fresh directory; SCRIPT says what is wrong (wrong MSG) and
# ends with `ok`.
run() {
	local d="$work/$1" out
	mkdir -p "$d/console"
	out=$(cd "$d" && busybox sh -c ". '$here/dom0/testlib.sh'; . '$here/testlib-test.stub'; $2" 2>&1) || true
	if [ "$(echo "$out" | tail -n 1)" = ok ] && ! echo "$out" | grep -q '^WRONG: '; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		echo "$out" | sed 's/^/     /'
		failed=1
	fi
}

# A Go image whose hypercall returns are 1e85c1, 1e85cd and 711408, and a
# fault report per domain: 5 at a return of the image it ran, 6 elsewhere
# in it, 7 in Xen's code, 8 in a Linux kernel, 9 at a return of an image it
# did not run (its kernel was not noted).
faults='printf "1e85c1\n1e85cd\n711408\n" >img.hypercall-returns
dmesg_fault 5 "0008:[<0000000000711408>]"
dmesg_fault 6 "0008:[<00000000001e859a>]"
dmesg_fault 7 "e008:[<ffff82d0402044a5>]"
dmesg_fault 8 "0010:[<ffffffff81001234>]"
dmesg_fault 9 "0008:[<00000000001e85c1>]"
_note_kernel 5 "$PWD/img"; _note_kernel 6 "$PWD/img"; _note_kernel 8 /test/vmlinux'

run classify "$faults
got=\$(_faults | tr '\n' ';')
[ \"\$got\" = '5 0008:[<0000000000711408>] 1;6 0008:[<00000000001e859a>] 0;7 e008:[<ffff82d0402044a5>] 1;8 0010:[<ffffffff81001234>] 1;9 0008:[<00000000001e85c1>] 0;' ] || wrong \"_faults: \$got\"
testbed_lost 5 && ! testbed_lost 6 && testbed_lost 7 && ! testbed_lost 9 && ! testbed_lost 10 || wrong testbed_lost
[ \"\$(testbed_fault 0)\" = \"TESTBED-FAULT: domain 5 triple-faulted at RIP 0008:[<0000000000711408>] (the test bed's nested SVM)\" ] || wrong 'testbed_fault 0'
testbed_fault 1 | grep -q 'domain 7 ' || wrong 'testbed_fault 1'
! testbed_fault 4 || wrong 'testbed_fault 4'
echo ok"

run fail-names-the-fault "$faults
(fail 'a reason') >out; grep -q '^TESTBED-FAULT: domain 5 ' out || wrong 'fail did not name the fault'
[ \"\$(cat result)\" = 'FAIL a reason' ] || wrong \"result: \$(cat result)\"
echo ok"

run xl-create-notes-the-kernel "printf 'name = \"g\"\nkernel = \"/test/img\"\n' >g.cfg
on_create 'live g 5'
xl_create g.cfg >/dev/null && [ \"\$XL_DOMID\" = 5 ] || wrong \"XL_DOMID=\$XL_DOMID\"
on_create 'live h 6'
xl_create g.cfg 'name=\"h\"' 'kernel=\"/test/other\"' >/dev/null && [ \"\$XL_DOMID\" = 6 ] || wrong \"XL_DOMID=\$XL_DOMID\"
[ \"\$(tr '\n' ';' <\"\$_KERNELS\")\" = '5 /test/img;6 /test/other;' ] || wrong \"kernels: \$(cat \"\$_KERNELS\")\"
echo ok"

# A domain that is done and gone before xl's next command is created once:
# `create` judged by the domain's existence and made a second one.
run create-once "printf 'name = \"g\"\n' >g.cfg
create g.cfg g >/dev/null || wrong 'create failed'
[ \"\$(cat creates)\" = 1 ] || wrong \"\$(cat creates) xl creates\"
echo ok"

run create-again-after-xl-failed "printf 'name = \"g\"\n' >g.cfg
on_create 'echo xl crashed >&2; false'
create g.cfg g >/dev/null && wrong 'create succeeded'
[ \"\$(cat creates)\" = 2 ] || wrong \"\$(cat creates) xl creates\"
echo ok"

# boot_guest: the first boot (domain 20) is lost at RIP after writing OUT
# to its console, the second (21) boots.
boot='printf "1e85c1\n1e85cd\n711408\n" >img.hypercall-returns
printf "name = \"g\"\nkernel = \"$PWD/img\"\n" >g.cfg
on_create "dying g 20; dmesg_fault 20 \"$RIP\"; printf %s \"$OUT\" >console/guest-g.log"
on_second_create "live g 21; echo READY >console/guest-g.log"
boot_guest g.cfg g READY 5 >log 2>&1; rc=$?'
run boot-again-after-testbed-fault "RIP='0008:[<00000000001e85cd>]' OUT=half-way; $boot
[ \$rc = 0 ] && [ \$BOOT_DOMID = 21 ] || { cat log; wrong \"rc \$rc BOOT_DOMID \$BOOT_DOMID\"; }
grep -q 'g (domain 20) triple-faulted at RIP 0008:\[<00000000001e85cd>\] (the test bed' log || wrong 'no drop logged'
[ \"\$(cat kept-g-faulted-20)\" = half-way ] || wrong 'faulted console log not kept'
echo ok"
run boot-fails-after-own-fault "RIP='0008:[<00000000001e8500>]' OUT=half-way; $boot
[ \$rc = 1 ] && [ \"\$(cat creates)\" = 1 ] || { cat log; wrong \"rc \$rc\"; }
echo ok"
run boot-again-after-fault-before-output "RIP='0008:[<00000000001e8500>]' OUT=; $boot
[ \$rc = 0 ] && [ \$BOOT_DOMID = 21 ] || { cat log; wrong \"rc \$rc\"; }
echo ok"

run mgr-lost "$faults
. '$here/../../mgrdomain/testbed/mgrlib.sh'
echo 'serving' >console/guest-mgr.log
mgr_lost 5 >out; grep -q '^\[dom0 .*TESTBED-FAULT: the manager (domain 5)' out || wrong 'a hypercall return not the test bed s'
echo 'serving' >console/guest-mgr.log
(mgr_lost 6) >/dev/null; grep -q 'neither a hypercall' result || wrong 'a fault elsewhere did not fail'
rm -f result
live mgr 11
mgr_lost 11 && wrong 'a running manager lost'
echo ok"

[ "$failed" = 0 ] || exit 1
