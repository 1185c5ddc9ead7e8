#!/usr/bin/env bash
# test-all.sh: every test tier, in order (README.md, "Test tiers"):
#   1. host unit and integration tests (go vet, go test -race), and a short
#      run of every fuzz target over its committed corpus plus new inputs;
#   2. real peers on the host (tpm2-tools, swtpm, go-tpm): part of go test,
#      each skipping with a SKIP: line when its peer is not installed;
#   3. QEMU without Xen: the TIS driver against QEMU's tpm-tis + swtpm;
#   4. the Xen test bed: our domains under real Xen 4.17 in QEMU, every
#      scenario found in the tree (a directory with a scenario.conf).
# Tiers 3 and 4 need the tamago-go toolchain; when it is missing it is
# installed with `go tool tamago` if GitHub can be reached, else each prints
# one SKIP: line. Ends with a "N passed, N failed, N skipped" line over the
# tiers.
#
#   test-all.sh          every tier, every scenario not marked TESTBED_MANUAL
#   TESTBED=PATTERNS test-all.sh
#                        only the test-bed scenarios PATTERNS select (comma or
#                        space separated): a pattern that is a scenario's path
#                        or directory name selects that scenario (manual ones
#                        too); any other selects every scenario whose path
#                        contains it, shell globs allowed. The host tiers (vet,
#                        unit, fuzz, images, QEMU) are not run then.
#   test-all.sh --list   the scenarios in run order, and which TESTBED selects
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
FUZZTIME=${FUZZTIME:-4s}
TESTBED=${TESTBED:-}
passed=0 failed=0 skipped=0
failures=()

# ---- the test-bed scenarios ----
# A scenario is a directory with a dom0-test.sh and a scenario.conf, which
# names it (TESTBED_TITLE), places it in the run (TESTBED_ORDER, lower
# first), may keep it out of a full run (TESTBED_MANUAL, the reason) and
# sets what run.sh needs (build/testbed/README.md).
scen_order=() scen_path=() scen_manual=() scen_title=()
layout_errors=()
find_scenarios() {
	local order path manual title dir us=$'\x1f'
	# Fields are split at a unit separator: tabs, being white space, would
	# merge around an empty field.
	while IFS=$us read -r order path manual title; do
		scen_order+=("$order") scen_path+=("$path") scen_manual+=("$manual") scen_title+=("$title")
		[ -n "$title" ] || layout_errors+=("$path/scenario.conf sets no TESTBED_TITLE")
		[ -f "$path/dom0-test.sh" ] || layout_errors+=("$path has a scenario.conf but no dom0-test.sh")
	done < <(
		find . \( -name .git -o -path "./${OUT:-out}" \) -prune -o -name scenario.conf -print |
			while IFS= read -r conf; do
				path=${conf#./}
				path=${path%/scenario.conf}
				# Each in a subshell: a conf only sets variables for run.sh.
				(
					TESTBED_TITLE="" TESTBED_ORDER=1000 TESTBED_MANUAL=""
					# shellcheck source=/dev/null
					. "$conf" >/dev/null 2>&1
					printf '%s\x1f%s\x1f%s\x1f%s\n' "$TESTBED_ORDER" "$path" "$TESTBED_MANUAL" "$TESTBED_TITLE"
				)
			done | LC_ALL=C sort -t "$us" -k1,1n -k2,2
	)
	# Every dom0-test.sh belongs to a scenario with a scenario.conf.
	while IFS= read -r dir; do
		dir=${dir#./}
		dir=${dir%/dom0-test.sh}
		[ -f "$dir/scenario.conf" ] || layout_errors+=("$dir has a dom0-test.sh but no scenario.conf")
	done < <(find . \( -name .git -o -path "./${OUT:-out}" \) -prune -o -name dom0-test.sh -print)
}

# select_scenarios sets chosen[i]=1 for each scenario $TESTBED selects; it
# returns 1, naming the pattern, when a pattern selects nothing.
chosen=()
select_scenarios() {
	local i p pats=() exact
	for i in "${!scen_path[@]}"; do
		chosen[i]=0
		[ -n "$TESTBED" ] || [ -n "${scen_manual[i]}" ] || chosen[i]=1
	done
	[ -n "$TESTBED" ] || return 0
	read -r -a pats <<<"${TESTBED//,/ }"
	for p in "${pats[@]}"; do
		p=${p#./}
		p=${p%/}
		exact=0
		for i in "${!scen_path[@]}"; do
			if [ "$p" = "${scen_path[i]}" ] || [ "$p" = "${scen_path[i]##*/}" ]; then
				chosen[i]=1 exact=1
			fi
		done
		[ "$exact" = 0 ] || continue
		for i in "${!scen_path[@]}"; do
			# shellcheck disable=SC2053 # $p is a pattern on purpose
			if [ -z "${scen_manual[i]}" ] && [[ ${scen_path[i]} == *$p* ]]; then
				chosen[i]=1 exact=1
			fi
		done
		if [ "$exact" = 0 ]; then
			echo "test-all: TESTBED pattern '$p' selects no scenario (build/test-all.sh --list shows them)" >&2
			return 1
		fi
	done
}

find_scenarios
if [ "${1:-}" = --list ] || [ "${1:-}" = -l ]; then
	select_scenarios || exit 2
	printf '%-5s %-3s %-40s %s\n' order run path title
	for i in "${!scen_path[@]}"; do
		run=no
		[ "${chosen[i]}" = 0 ] || run=yes
		printf '%-5s %-3s %-40s %s\n' "${scen_order[i]}" "$run" "${scen_path[i]}" "${scen_title[i]}"
		[ -z "${scen_manual[i]}" ] || printf '%50s(manual: %s)\n' "" "${scen_manual[i]}"
	done
	for e in "${layout_errors[@]}"; do echo "layout: $e"; done
	exit 0
elif [ $# -gt 0 ]; then
	sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
select_scenarios || exit 2

step() { # step NAME CMD...: run one step and count it
	local name=$1
	shift
	echo "=== $name"
	local start=$SECONDS rc
	"$@"
	rc=$?
	case $rc in
	0) passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - start))s)" ;;
	3) skipped=$((skipped + 1)); echo "=== $name: skipped" ;;
	*) failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED (exit $rc, $((SECONDS - start))s)" ;;
	esac
}

flaky=()
testbed() { # testbed NAME SCENARIO [ARGS]: a test-bed run, tried twice or three times
	# Everything under the test bed is emulated on a shared 2-core host;
	# xl itself has been seen to segfault while building a domain there. A
	# scenario that fails twice fails; one that passes on a later try passes
	# and is listed at the end, so flakiness stays visible. A try that ended
	# with the test bed's own fault (run.sh's status 4: a domain's state lost
	# by QEMU's emulated SVM) does not count against the scenario, up to
	# three tries in all.
	local name=$1 try rc counted=0
	shift
	for try in 1 2 3; do
		build/testbed/run.sh -q "$@"
		rc=$?
		if [ "$rc" = 0 ]; then
			[ "$try" = 1 ] || flaky+=("$name (try $try)")
			return 0
		fi
		[ "$rc" = 4 ] || counted=$((counted + 1))
		[ "$counted" -lt 2 ] && [ "$try" -lt 3 ] || return 1
		echo "--- $name failed (status $rc); trying once more"
	done
}

fuzz_targets() { # "PKG TARGET" for every Fuzz target, read from the sources
	# (go test -list would build and run every package's tests once more:
	# a minute of the tier for nothing).
	git ls-files '*_test.go' | xargs grep -l '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' |
		while read -r f; do
			sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$f" |
				while read -r t; do echo "./$(dirname "$f") $t"; done
		done | sort
}

fuzz_all() { # every Fuzz target in every package, FUZZTIME each
	# Each package's test binary is built once, with the fuzzer's coverage
	# instrumentation, and each target is stopped with SIGINT after
	# FUZZTIME rather than by -fuzztime: Go 1.26's fuzzer sometimes reports
	# its own deadline as a failure ("context deadline exceeded", no failing
	# input; golang/go#75804), while an interrupt ends a run that found
	# nothing cleanly. A failing input is written under the package's
	# testdata/fuzz as with go test -fuzz.
	local rc=0 pkg target bin last="" dir cache
	dir=$(mktemp -d)
	while read -r pkg target; do
		{
			echo "--- fuzz $pkg $target"
			bin="$dir/$(echo "$pkg" | tr / _).test"
			if [ "$pkg" != "$last" ]; then
				last=$pkg
				cache="$(go env GOCACHE)/fuzz/$(go list "$pkg")"
				go test -c -fuzz . -o "$bin" "$pkg" >"$dir/build.log" 2>&1 || {
					cat "$dir/build.log"
					rc=1
					continue
				}
			fi
			if ! (cd "$pkg" && timeout --preserve-status -s INT "$FUZZTIME" "$bin" -test.run '^$' \
				-test.fuzz "^${target}\$" -test.fuzztime 1h -test.timeout 10m \
				-test.fuzzcachedir "$cache") >"$dir/fuzz.log" 2>&1; then
				cat "$dir/fuzz.log"
				rc=1
			fi
		} </dev/null
	done < <(fuzz_targets)
	rm -rf "$dir"
	[ "$(fuzz_targets | wc -l)" -gt 0 ] || { echo "no fuzz targets found"; rc=1; }
	return $rc
}

layout() { # the scenarios' shape (above); a host check, so it always runs
	[ ${#layout_errors[@]} -eq 0 ] && return 0
	printf '%s\n' "${layout_errors[@]}"
	return 1
}

step "test-bed scenario layout (${#scen_path[@]} scenarios)" layout
step "test-bed helpers (dom0's testlib.sh under busybox, xl stood in for)" build/testbed/testlib-test.sh
if [ -z "$TESTBED" ]; then
	# The engine's Linux-guest test (tier 2/3) boots the test bed's Debian
	# kernel under QEMU; prepare it when the test bed's packages can be fetched.
	if [ -z "${VTPMD_TEST_KERNEL:-}" ] && build/testbed/prepare.sh >/tmp/xenvtpm-prepare.log 2>&1; then
		VTPMD_TEST_KERNEL=$(sed -n 's/^TESTBED_KERNEL=//p' "${XENVTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvtpm}/testbed/out/testbed.env")
		export VTPMD_TEST_KERNEL
	fi
	step "vet" go vet ./...
	step "unit+peers (go test -race)" go test -race -count=1 ./...
	step "fuzz (${FUZZTIME} per target)" fuzz_all
else
	echo "=== TESTBED=$TESTBED: the selected test-bed scenarios only (no vet, unit, fuzz, images or QEMU tier)"
fi
if build/toolchain.sh ensure; then
	if [ -z "$TESTBED" ]; then
		step "images" make -s images
		if [ -x build/qemu-tis/run.sh ]; then
			step "QEMU tier: tpm_tis driver on QEMU tpm-tis + swtpm" env SKIP_EXIT=3 build/qemu-tis/run.sh
		fi
	fi
	for i in "${!scen_path[@]}"; do
		[ "${chosen[i]}" = 1 ] || continue
		name="Xen test bed: ${scen_title[i]}"
		step "$name" testbed "$name" "${scen_path[i]}"
	done
else
	skipped=$((skipped + 1))
fi

echo
if [ ${#flaky[@]} -gt 0 ]; then
	echo "passed only on a later try: ${flaky[*]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed steps: ${failures[*]}"
fi
echo "tiers: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
