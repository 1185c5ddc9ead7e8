#!/usr/bin/env bash
# toolchain.sh: is the tamago-go compiler that go.mod's tamago version needs
# installed where `go tool tamago` looks for it?
#
#   toolchain.sh check     exit 0 if installed; else print one SKIP: line, exit 3
#   toolchain.sh ensure    exit 0 if installed; else install it with
#                          `go tool tamago` (a clone of usbarmory/tamago-go from
#                          GitHub and its make.bash, a few minutes) when GitHub
#                          answers within 10 s; when it does not, or the
#                          install fails, print one SKIP: line and exit 3
#   toolchain.sh path      print the toolchain's go binary
#   toolchain.sh install   build it from a local tamago-go clone given as
#                          TAMAGO_GO_SRC (for machines without GitHub access)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ver=$(awk '$1=="github.com/usbarmory/tamago"{print $2; exit}' "$top/go.mod" | sed 's/^v//')
[ -n "$ver" ] || { echo "toolchain.sh: no tamago version in go.mod" >&2; exit 2; }
# Where `go tool tamago` keeps it: Go's os.UserCacheDir, then tamago-go/.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tamago-go"
root="$cache/tamago-go$ver"
repo=https://github.com/usbarmory/tamago-go
hint="Install it with: make toolchain TAMAGO_GO_SRC=<tamago-go clone>"

installed() { [ -x "$root/bin/go" ]; }

skip() { # skip WHY: the one line the test tiers print instead of running
	echo "SKIP: tamago-go$ver is not installed (expected $root/bin/go)${1:+; $1}; image builds, QEMU and Xen tiers skipped. $hint"
	exit 3
}

# ensure installs the toolchain the way `go tool tamago` does on first use,
# after a quick look at GitHub: without it, that would hang in git's
# connection attempts or fail after printing a clone error.
ensure() {
	installed && return 0
	# ls-remote honours git's proxy settings; the tag must exist too.
	if ! GIT_TERMINAL_PROMPT=0 timeout 10 git ls-remote --exit-code "$repo" "refs/tags/tamago-go$ver" >/dev/null 2>&1; then
		skip "$repo cannot be reached to fetch it"
	fi
	mkdir -p "$cache"
	local log="$cache/install-tamago-go$ver.log"
	# One installer at a time; a second waits and then finds it installed.
	exec 9>"$cache/.install.lock"
	flock 9
	installed && return 0
	echo "toolchain: installing tamago-go$ver with go tool tamago (clone from GitHub and build, a few minutes; log: $log)" >&2
	local t0=$SECONDS
	# `go tool tamago version` installs the toolchain, then runs its go version.
	if (cd "$top" && go tool tamago version) >"$log" 2>&1 && installed; then
		echo "toolchain: tamago-go$ver installed in $root ($((SECONDS - t0))s)" >&2
		return 0
	fi
	echo "toolchain: go tool tamago could not install tamago-go$ver; the end of its log ($log):" >&2
	tail -n 15 "$log" >&2
	# A partial clone would make every later attempt fail at git clone.
	rm -rf "$root"
	skip "installing it with go tool tamago failed"
}

case "${1:-check}" in
check)
	installed || skip ""
	;;
ensure) ensure ;;
path) echo "$root/bin/go" ;;
install)
	src=${TAMAGO_GO_SRC:?set TAMAGO_GO_SRC to a git clone of usbarmory/tamago-go}
	rm -rf "$root"
	git clone -q --branch "tamago-go$ver" "$src" "$root"
	(cd "$root/src" && PATH="$root/bin:$PATH" ./make.bash)
	;;
*) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
