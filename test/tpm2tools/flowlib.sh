# shellcheck shell=bash
# Shared by flows.sh and fapi.sh: how a flow fails and how its result is
# printed. Sourced, not run.

# tool_failed TOOL first|last: ends the flow, recording TOOL's name and the
# TPM response code its err.txt names (the first one for FAPI, whose
# later lines wrap it in FAPI's own codes; the last one for tpm2-tools).
tool_failed() {
	local pick="head" code
	[[ $2 == last ]] && pick="tail"
	code=$(grep -oE 'ErrorCode \(0x[0-9a-fA-F]+\)' err.txt | $pick -1 | grep -oE '0x[0-9a-fA-F]+')
	[[ -n $code ]] || code=$(grep -oE '\(0x[0-9a-fA-F]+\) - ' err.txt | $pick -1 | grep -oE '0x[0-9a-fA-F]+')
	if [[ -n $code ]]; then
		printf '%s rc=0x%x\n' "$1" "$code" >.fail
	else
		echo "$1 exit: $(tr '\n' ' ' <err.txt | cut -c1-160)" >.fail
	fi
	exit 1
}

# check COND... MESSAGE: a failed test ends the flow.
check() {
	local msg=${*: -1}
	if ! "${@:1:$#-1}"; then
		echo "check: $msg" >.fail
		exit 1
	fi
}

# run_flow NAME AFTER...: runs flow_NAME in a directory of its own under
# $top, then the command AFTER (which frees what the flow left loaded),
# and prints the flow's FLOW line. Returns the flow's exit status.
run_flow() {
	local f=$1 d=${top:?}/$1 rc
	shift
	mkdir -p "$d"
	(cd "$d" && "flow_$f") >"$d/log.txt" 2>&1
	rc=$?
	"$@"
	if ((rc == 0)); then
		echo "FLOW $f ok"
	elif [[ -s $d/.fail ]]; then
		echo "FLOW $f FAIL $(cat "$d/.fail")"
	else
		echo "FLOW $f FAIL exit $rc"
	fi
	return $rc
}
