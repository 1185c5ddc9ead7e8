#!/usr/bin/env bash
# toolchain.sh: is the tamago-go compiler that go.mod's tamago version needs
# installed where `go tool tamago` looks for it?
#
#   toolchain.sh check     exit 0 if installed; else print one SKIP: line, exit 3
#   toolchain.sh path      print the toolchain's go binary
#   toolchain.sh install   build it from a local tamago-go clone given as
#                          TAMAGO_GO_SRC (the tamago command itself would clone
#                          it from GitHub, which build machines may not reach)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ver=$(awk '$1=="github.com/usbarmory/tamago"{print $2; exit}' "$top/go.mod" | sed 's/^v//')
[ -n "$ver" ] || { echo "toolchain.sh: no tamago version in go.mod" >&2; exit 2; }
root="${XDG_CACHE_HOME:-$HOME/.cache}/tamago-go/tamago-go$ver"

case "${1:-check}" in
check)
	if [ -x "$root/bin/go" ]; then exit 0; fi
	echo "SKIP: tamago-go$ver is not installed (expected $root/bin/go); image builds, QEMU and Xen tiers skipped. Install it with: make toolchain TAMAGO_GO_SRC=<tamago-go clone>"
	exit 3
	;;
path) echo "$root/bin/go" ;;
install)
	src=${TAMAGO_GO_SRC:?set TAMAGO_GO_SRC to a git clone of usbarmory/tamago-go}
	rm -rf "$root"
	git clone -q --branch "tamago-go$ver" "$src" "$root"
	(cd "$root/src" && PATH="$root/bin:$PATH" ./make.bash)
	;;
*) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
