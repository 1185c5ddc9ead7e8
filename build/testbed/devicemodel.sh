#!/usr/bin/env bash
# devicemodel.sh: build Xen's device model (QEMU's qemu-system-i386 for Xen HVM guests)
# with TPM support, from the Debian source of the qemu-system-xen package apt would install.
#
# Usage:
#   devicemodel.sh [-q]        build unless cached; print the cache directory holding
#                              xen-qemu-system-i386, lib/ and build-info
#   devicemodel.sh -q --check  print that directory if it is cached, else exit 1 (no build)
#
# Why: Debian 12 builds qemu-system-xen without --enable-tpm, so it refuses
# `-tpmdev emulator` and has no tpm-tis device; HVM guests with a QEMU-emulated TPM need a
# rebuild of the same source. Nothing on the host's apt configuration changes: the source
# package comes through a private sources list (deb-src lines for the release, its
# updates and security suites on deb.debian.org) with private package lists and cache.
# The build dependencies are installed with apt-get (through host-deps.sh).
#
# The result is cached under
# ${XENVTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvtpm}/testbed/devicemodel/KEY/, KEY
# naming the qemu source version, the Xen library version it is built against and a hash
# of the configure line; a cached build is never rebuilt. The first build takes ~6 min on
# 2 cores. Directory contents:
#   xen-qemu-system-i386   the stripped binary (libxl runs /usr/libexec/xen-qemu-system-i386)
#   lib/                   the shared libraries it needs that are neither glibc's nor
#                          Xen's (glib, pixman, fdt, ...), so dom0 can be assembled even
#                          if the build dependencies are removed from the host later
#   build-info             source version, configure line, build time
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
CACHE=${XENVTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvtpm}/testbed
DMDIR=$CACHE/devicemodel
MIRROR=${XENVTPM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${XENVTPM_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
QUIET=0

# What the Xen device model needs and nothing else: one target, no TCG/KVM (Xen runs the
# guest), no audio/UI/tools/docs; TPM on (the point), and the system libfdt instead of
# the dtc submodule Debian's source tarball does not carry.
CONFIGURE=(--prefix=/usr --firmwarepath=/usr/share/qemu:/usr/share/seabios
	--disable-docs --disable-tools --without-default-features --enable-xen
	--target-list=i386-softmmu --disable-tcg --disable-kvm --audio-drv-list=
	--enable-tpm --enable-fdt=system)
BUILD_DEPS=(dpkg-dev gcc make python3 meson ninja-build pkg-config libxen-dev libglib2.0-dev
	libpixman-1-dev libfdt-dev zlib1g-dev)

log() { [ "$QUIET" = 1 ] || echo "devicemodel: $*" >&2; }
die() { echo "devicemodel: error: $*" >&2; exit 1; }

# candidate PKG prints the version apt would install of PKG.
candidate() {
	local v
	v=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
	[ -n "$v" ] && [ "$v" != "(none)" ] || return 1
	echo "$v"
}

# source_version prints the version of the qemu source package the candidate
# qemu-system-xen was built from (a binNMU like +b3 has no source of its own).
source_version() {
	local v src
	v=$(candidate qemu-system-xen) || die "apt knows no qemu-system-xen (run apt-get update)"
	src=$(apt-cache show "qemu-system-xen=$v" | sed -n 's/^Source: qemu (\(.*\))$/\1/p' | head -n1)
	echo "${src:-$v}"
}

# key names the cache entry: source version (without the epoch, which has a colon), the
# Xen library version built against, and the configure line.
cache_key() {
	local src=$1 xen=$2 h
	h=$(printf '%s\n' "${CONFIGURE[@]}" | sha256sum | cut -c1-8)
	echo "qemu-${src#*:}-xen-${xen#*:}-$h"
}

# private_apt runs apt-get with a sources list, package lists and cache of its own, so
# the host's apt state is neither read for sources nor changed.
private_apt() {
	local a=$DMDIR/apt
	local opts=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/sources.list.d"
		-o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache")
	# As root, apt drops to the _apt user for downloads, which cannot write here.
	[ "$(id -u)" != 0 ] || opts+=(-o APT::Sandbox::User=root)
	apt-get "${opts[@]}" "$@"
}

setup_private_apt() {
	local a=$DMDIR/apt codename
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release"
	[ -f "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"
	mkdir -p "$a/sources.list.d" "$a/lists/partial" "$a/cache/archives/partial"
	cat >"$a/sources.list" <<-EOF
		deb-src [signed-by=$KEYRING] $MIRROR $codename main
		deb-src [signed-by=$KEYRING] $MIRROR $codename-updates main
		deb-src [signed-by=$KEYRING] $SECURITY_MIRROR $codename-security main
	EOF
	log "fetching the $codename source indexes (private lists in $a)"
	private_apt -q update >"$a/update.log" 2>&1 || {
		cat "$a/update.log" >&2
		die "apt-get update of the private deb-src lists failed"
	}
}

# install_build_deps installs what the build needs, and makes sure libxen-dev matches the
# Xen libraries the test bed's dom0 will run it with (the candidate version).
install_build_deps() {
	local xen=$1 have
	"$HERE/host-deps.sh" "${BUILD_DEPS[@]}" >&2 || die "installing the build dependencies failed"
	have=$(dpkg-query -W -f='${Version}' libxen-dev)
	if [ "$have" != "$xen" ]; then
		log "libxen-dev $have installed, the test bed runs Xen libraries $xen: installing that"
		local sudo=()
		[ "$(id -u)" = 0 ] || sudo=(sudo)
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
			"libxen-dev=$xen" >&2 || die "cannot install libxen-dev=$xen"
	fi
}

# copy_libs copies the shared libraries BIN needs into DIR, except glibc's (the dom0
# initramfs takes those from the host, matching its other binaries) and Xen's (they come
# from the test bed's unpacked Xen packages, the versions dom0 runs).
copy_libs() {
	local bin=$1 dir=$2 lib deps
	mkdir -p "$dir"
	deps=$(ldd "$bin") || die "ldd $bin failed"
	! grep -q 'not found' <<<"$deps" || die "libraries missing for $bin: $deps"
	while read -r lib; do
		case ${lib##*/} in
		ld-linux* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | libresolv.so*) ;;
		libxen* | libxtl*) ;;
		*) cp -L "$lib" "$dir/${lib##*/}" ;;
		esac
	done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$deps")
}

build() {
	local src=$1 xen=$2 dest=$3 work t0
	t0=$(date +%s)
	install_build_deps "$xen"
	work=$DMDIR/work
	# An interrupted build of the same key resumes (ninja builds what is missing); any
	# other work directory is stale.
	if [ "$(cat "$work/.key" 2>/dev/null)" = "${dest##*/}" ] && [ -f "$work/qemu/b/build.ninja" ]; then
		log "resuming the build in $work"
	else
		rm -rf "$work"
		mkdir -p "$work"
		setup_private_apt
		log "downloading the qemu $src source package"
		(cd "$work" && private_apt -q source --download-only "qemu=$src" >download.log 2>&1) || {
			cat "$work/download.log" >&2
			die "apt-get source qemu=$src failed"
		}
		log "unpacking it (with Debian's patches)"
		(cd "$work" && dpkg-source -x ./*.dsc qemu >unpack.log 2>&1) || {
			cat "$work/unpack.log" >&2
			die "dpkg-source -x failed"
		}
		log "configuring: ${CONFIGURE[*]}"
		mkdir -p "$work/qemu/b"
		(cd "$work/qemu/b" && ../configure "${CONFIGURE[@]}" >"$work/configure.log" 2>&1) || {
			tail -n 40 "$work/configure.log" >&2
			die "configure failed (log: $work/configure.log)"
		}
		echo "${dest##*/}" >"$work/.key"
	fi
	log "building qemu-system-i386 with $(nproc) jobs (about 6 min on 2 cores)"
	(cd "$work/qemu/b" && ninja -j "$(nproc)" qemu-system-i386 >"$work/build.log" 2>&1) || {
		tail -n 40 "$work/build.log" >&2
		die "build failed (log: $work/build.log)"
	}
	local bin=$work/qemu/b/qemu-system-i386
	# A TPM-less build is what this script exists to avoid: check before caching. (QEMU
	# exits 1 after -tpmdev help, so the output is judged, not the status.)
	grep -q '"tpm-tis"' <<<"$("$bin" -device help 2>&1 || true)" ||
		die "the built QEMU has no tpm-tis device"
	grep -q '^ *emulator ' <<<"$("$bin" -tpmdev help 2>&1 || true)" ||
		die "the built QEMU has no emulator TPM backend"
	local new=$dest.new
	rm -rf "$new"
	mkdir -p "$new"
	strip -o "$new/xen-qemu-system-i386" "$bin"
	copy_libs "$bin" "$new/lib"
	cat >"$new/build-info" <<-EOF
		source: qemu $src (Debian; as qemu-system-xen $(candidate qemu-system-xen))
		xen libraries: libxen-dev $xen
		configure: ${CONFIGURE[*]}
		built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - t0)) s
	EOF
	mv "$new" "$dest"
	rm -rf "$work"
	log "built in $(($(date +%s) - t0)) s: $dest"
}

main() {
	local check=0
	while [ $# -gt 0 ]; do
		case $1 in
		-q) QUIET=1; shift ;;
		--check) check=1; shift ;;
		-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument $1 (try --help)" ;;
		esac
	done
	local src xen dest
	src=$(source_version)
	xen=$(candidate libxen-dev) || die "apt knows no libxen-dev (run apt-get update)"
	dest=$DMDIR/$(cache_key "$src" "$xen")
	if [ -x "$dest/xen-qemu-system-i386" ]; then
		echo "$dest"
		return
	fi
	[ "$check" = 0 ] || exit 1
	mkdir -p "$DMDIR"
	# One build at a time; a second caller waits and then finds the result.
	exec 8>"$DMDIR/.lock"
	flock 8
	if [ ! -x "$dest/xen-qemu-system-i386" ]; then
		build "$src" "$xen" "$dest"
	fi
	echo "$dest"
}

main "$@"
