#!/usr/bin/env bash
# host-deps.sh: install the Debian packages the test bed needs on the host (for CI and
# new machines). Quick when they are there already: apt is only consulted for what is
# missing. Extra package names given as arguments are installed too.
#
#   qemu-system-x86   runs Xen and dom0 (TCG)
#   swtpm             the TPM behind QEMU's tpm-tis (run.sh --tpm)
#   swtpm-tools       swtpm_setup, a scenario's TPM provisioning (TESTBED_TPM_SETUP)
#   xz-utils          prepare.sh unpacks the kernel's ELF image from Debian's bzImage
#
# Everything else (Xen, the dom0 kernel, busybox, the toolstack) is downloaded and unpacked
# by prepare.sh, not installed.
set -euo pipefail

pkgs=(qemu-system-x86 swtpm swtpm-tools xz-utils "$@")

missing=()
for p in "${pkgs[@]}"; do
	# dpkg-query prints "install ok installed" only for a fully installed package.
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "host-deps: all installed: ${pkgs[*]}"
	exit 0
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || {
		echo "host-deps: error: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo)
fi
echo "host-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
# Recommends would add QEMU's GUI, UEFI firmware and block plugins the test bed never uses.
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
