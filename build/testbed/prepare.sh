#!/usr/bin/env bash
# prepare.sh: assemble the Xen-in-QEMU test bed from Debian packages.
#
# Usage:
#   prepare.sh [-q]                 fetch, unpack and build the base artifacts (idempotent)
#   prepare.sh env                  same, then print the artifact paths as shell assignments
#   prepare.sh guest-initramfs --init FILE --out FILE [--bin PATH]... [--module NAME]...
#                                   [--file SRC:DEST]... [--gzip]
#                                   build a busybox initramfs for a Linux domU
#   prepare.sh [-q] hvm [ovmf]      also build dom0-hvm.cpio: what dom0 needs to run HVM
#                                   guests (the device model, built by devicemodel.sh on
#                                   first use, ~6 min; hvmloader; SeaBIOS; QEMU's option
#                                   ROMs; with "ovmf" also OVMF); prints its path
#
# Packages are only downloaded (apt-get download) and unpacked (dpkg-deb -x) into a cache
# outside the repository; nothing is installed on the host. Outputs, under
# ${XENVTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvtpm}/testbed/out:
#   xen                 the gunzipped Xen 4.17 hypervisor (a multiboot kernel for QEMU)
#   vmlinuz             Debian's amd64 kernel (bzImage)
#   vmlinux             the same kernel uncompressed (ELF): the kernel for PV/PVH domUs, as
#                       xl then creates a domain in 1-2 s instead of 6-20 s spent
#                       decompressing the bzImage in dom0 under the emulated CPU
#   dom0-base.cpio      dom0 initramfs without /init: busybox, the Xen toolstack, its
#                       libraries, kernel modules (run.sh appends /init and the scenario)
#   dom0-hvm.cpio       (prepare.sh hvm) an addition to dom0-base.cpio for HVM guests
#   dom0-hvm-ovmf.cpio  (prepare.sh hvm ovmf) the same plus OVMF
#   testbed.env         the paths above as TESTBED_* shell assignments
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
CACHE=${XENVTPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenvtpm}/testbed
DEBS=$CACHE/debs
ROOT=$CACHE/root
OUT=$CACHE/out
# HVM guests' firmware packages live apart from the base set, so scenarios that do not
# ask for HVM neither download nor unpack them.
HVM_DEBS=$CACHE/debs-hvm
HVM_ROOT=$CACHE/root-hvm
QUIET=0

# Xen 4.17 is what Debian 12 ships; the dom0 toolstack must match the hypervisor exactly.
XEN_PKGS=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
	libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
	libxenstore4 libxentoollog1 libxendevicemodel1 libxenhypfs1 libxentoolcore1 libyajl2)
# The toolstack binaries dom0 needs (from /usr/lib/xen-4.17/bin). xenconsole backs
# `xl console`; xentop, lsevtchn and xenctx are for measuring and debugging domains.
XEN_BINS=(xl xenstored xenconsoled xenconsole xen-init-dom0 libxl-save-helper xentop lsevtchn xenctx
	xenstore-control)
# Kernel modules dom0 loads at boot: the Xen device files the toolstack opens, plus the
# block backend and loop devices for domains with PV disks.
DOM0_MODULES=(xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc xen-blkback loop)
# HVM guests: SeaBIOS (hvmloader's BIOS, and the VGA BIOS if a guest has a display),
# QEMU's option ROMs (direct kernel boot: linuxboot), OVMF for UEFI guests.
HVM_PKGS=(seabios qemu-system-data ovmf)

log() { [ "$QUIET" = 1 ] || echo "prepare: $*" >&2; }
die() { echo "prepare: error: $*" >&2; exit 1; }

# apt_quiet runs an apt command and shows its output only if it fails.
apt_quiet() {
	local out
	if ! out=$("$@" 2>&1); then
		echo "$out" >&2
		return 1
	fi
}

# apt_opts: when root, let apt write into a cache directory that its unprivileged _apt
# sandbox user cannot reach (it would otherwise warn on every download).
apt_opts() {
	if [ "$(id -u)" = 0 ]; then echo "-o APT::Sandbox::User=root"; fi
}

# kernel_package prints the versioned kernel package linux-image-amd64 currently points
# to, so the ABI version follows Debian's updates instead of being hard-coded.
kernel_package() {
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		# A fresh machine may have no package lists yet.
		log "apt has no package lists: running apt-get update"
		apt_quiet apt-get update || die "apt-get update failed"
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
	fi
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update as root)"
	echo "$pkg"
}

# fetch_debs DIR PKG... downloads into DIR the .deb files of the PKGs that are not there
# yet and prints the wanted file names. The exact file names come from apt-get
# --print-uris (no network), so a cached run downloads nothing and a Debian update
# replaces the stale file.
fetch_debs() {
	local dir=$1 uris want=() missing=() f
	shift
	# shellcheck disable=SC2046 # apt_opts is a list of words by design
	uris=$(apt-get download --print-uris $(apt_opts) "$@") ||
		die "apt-get download --print-uris failed"
	mkdir -p "$dir"
	while read -r _ f _; do
		want+=("$f")
		[ -f "$dir/$f" ] || missing+=("$f")
	done <<<"$uris"
	[ ${#want[@]} -gt 0 ] || die "apt resolved no packages"
	if [ ${#missing[@]} -gt 0 ]; then
		log "downloading ${#missing[@]} packages into $dir"
		# apt-get download takes package names; the version pinned in the file name is the
		# candidate, the same apt just resolved.
		local names=()
		for f in "${missing[@]}"; do names+=("${f%%_*}"); done
		# shellcheck disable=SC2046
		if ! (cd "$dir" && apt_quiet apt-get download $(apt_opts) "${names[@]}"); then
			# Old package lists name versions the mirror has dropped: refresh them once.
			if [ -z "${FETCH_RETRIED:-}" ] && [ "$(id -u)" = 0 ]; then
				log "download failed: running apt-get update and retrying"
				apt_quiet apt-get update || die "apt-get update failed"
				FETCH_RETRIED=1 fetch_debs "$dir" "$@"
				return
			fi
			die "apt-get download failed (apt-get update may help)"
		fi
	fi
	# Drop packages no longer wanted (superseded versions) so the cache does not grow.
	for f in "$dir"/*.deb; do
		[[ " ${want[*]} " == *" ${f##*/} "* ]] || rm -f "$f"
	done
	printf '%s\n' "${want[@]}" | sort
}

# unpack DEBS ROOT LIST extracts the .debs named in LIST (from DEBS) into one tree ROOT,
# unless that exact set is there already.
unpack() {
	local debs=$1 root=$2 list=$3 f
	if [ -f "$root/.debs" ] && [ "$(cat "$root/.debs")" = "$list" ]; then
		return
	fi
	log "unpacking packages into $root"
	rm -rf "$root"
	mkdir -p "$root"
	while read -r f; do
		dpkg-deb -x "$debs/$f" "$root" || die "cannot unpack $f"
	done <<<"$list"
	echo "$list" >"$root/.debs"
}

# kver prints the unpacked kernel's version (its modules directory name).
kver() {
	local d
	for d in "$ROOT"/lib/modules/*; do
		[ -d "$d/kernel" ] && { echo "${d##*/}"; return; }
	done
	die "no kernel modules found under $ROOT/lib/modules"
}

# new_root creates the skeleton of an initramfs. It is merged-/usr like Debian: libraries
# live in /usr/lib/x86_64-linux-gnu, which the dynamic loader searches without an
# ld.so.cache, and /lib, /lib64 point into /usr.
new_root() {
	local r=$1
	skeleton "$r"
	mkdir -p "$r"/{bin,sbin,dev,proc,sys,run,tmp,etc,root,var/log}
	mkdir -p "$r"/usr/{bin,sbin,lib/modules}
	chmod 1777 "$r/tmp"
	cp "$ROOT/bin/busybox" "$r/bin/busybox"
}

# skeleton creates the merged-/usr links of an initramfs. An archive appended to another
# must carry them too: the kernel's unpacker replaces a symlink by a directory of the
# same name, which would cut /lib off from /usr/lib.
skeleton() {
	local r=$1
	rm -rf "$r"
	mkdir -p "$r"/usr/{lib/x86_64-linux-gnu,lib64}
	ln -s usr/lib "$r/lib"
	ln -s usr/lib64 "$r/lib64"
}

# install_file copies FILE into initramfs R at DEST (default: FILE's own path), resolving
# symlinks so the copy is a real file.
install_file() {
	local r=$1 src=$2 dest=${3:-$2}
	mkdir -p "$r$(dirname "$dest")"
	cp -L "$src" "$r$dest" || die "cannot copy $src"
}

# install_libs copies the shared libraries ELF file FILE needs into initramfs R. Libraries
# found in the unpacked package tree keep their path inside it; host libraries (libc and
# friends) keep their host path.
install_libs() {
	local r=$1 file=$2 lib
	local deps
	# EXTRA_LIBS: library directories searched first (the device model's cached libraries).
	deps=$(LD_LIBRARY_PATH="${EXTRA_LIBS:+$EXTRA_LIBS:}$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/xen-4.17/lib/x86_64-linux-gnu" \
		ldd "$file" 2>&1) || {
		# Static binaries are fine; anything else is a real problem.
		grep -q 'not a dynamic executable' <<<"$deps" && return 0
		die "ldd $file failed: $deps"
	}
	if grep -q 'not found' <<<"$deps"; then
		die "missing libraries for $file:"$'\n'"$(grep 'not found' <<<"$deps")"
	fi
	# Both "name => /path (addr)" and the loader's "/lib64/ld-linux-x86-64.so.2 (addr)".
	while read -r lib; do
		case $lib in
		"$ROOT"/*) install_file "$r" "$lib" "${lib#"$ROOT"}" ;;
		"${EXTRA_LIBS:-/nonexistent}"/*) install_file "$r" "$lib" "/usr/lib/x86_64-linux-gnu/${lib##*/}" ;;
		*) install_file "$r" "$lib" ;;
		esac
	done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$deps" | sort -u)
}

# module_deps prints the modules NAME needs, dependencies first, as paths relative to the
# kernel's modules directory. Debian's package has no modules.dep (depmod runs at install
# time), so the dependencies come from each module's own .modinfo "depends=" field.
module_deps() {
	local mdir=$1 name=$2 path dep
	path=$(find "$mdir/kernel" -name "$name.ko*" -print -quit)
	if [ -z "$path" ]; then
		# Module names treat - and _ alike.
		path=$(find "$mdir/kernel" \( -name "${name//_/-}.ko*" -o -name "${name//-/_}.ko*" \) -print -quit)
	fi
	if [ -z "$path" ]; then
		if grep -q "/${name}.ko\$\|/${name//_/-}.ko\$\|/${name//-/_}.ko\$" "$mdir/modules.builtin"; then
			return 0 # built into the kernel: nothing to load
		fi
		die "kernel module $name not found in $mdir"
	fi
	for dep in $(modinfo_field "$path" depends | tr ',' ' '); do
		module_deps "$mdir" "$dep"
	done
	echo "${path#"$mdir"/}"
}

# modinfo_field prints a field of a module's .modinfo section without needing kmod.
modinfo_field() {
	local ko=$1 field=$2
	decompress_module "$ko" | tr '\0' '\n' | sed -n "s/^$field=//p" | head -n1
}

decompress_module() {
	case $1 in
	*.ko) cat "$1" ;;
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -dc "$1" ;;
	*) die "unknown module format: $1" ;;
	esac
}

# install_modules copies the named modules and their dependencies into initramfs R as
# /lib/modules/NAME.ko (uncompressed, for busybox insmod) and lists them, in load order,
# in /lib/modules/load-order. The helper /sbin/load-modules loads that list.
install_modules() {
	local r=$1
	shift
	local mdir
	mdir="$ROOT/lib/modules/$(kver)"
	local name list rel seen=" " base
	for name in "$@"; do
		list=$(module_deps "$mdir" "$name") # exits on a missing module
		for rel in $list; do
			base=${rel##*/}
			base=${base%%.ko*}
			[[ $seen == *" $base "* ]] && continue
			seen+="$base "
			decompress_module "$mdir/$rel" >"$r/lib/modules/$base.ko"
			echo "/lib/modules/$base.ko" >>"$r/lib/modules/load-order"
		done
	done
	touch "$r/lib/modules/load-order"
	cat >"$r/sbin/load-modules" <<-'EOF'
		#!/bin/sh
		# Load the modules the test bed put into this initramfs, dependencies first.
		rc=0
		while read -r m; do
			insmod "$m" || { echo "load-modules: insmod $m failed" >&2; rc=1; }
		done </lib/modules/load-order
		exit $rc
	EOF
	chmod +x "$r/sbin/load-modules"
}

# make_cpio writes initramfs R as an uncompressed newc archive: the kernel unpacks that
# faster than gzip under an emulated CPU, and archives concatenate cleanly.
make_cpio() {
	local r=$1 out=$2
	(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | "$ROOT/bin/busybox" cpio -o -H newc 2>/dev/null) \
		>"$out.tmp" || die "cpio of $r failed"
	mv "$out.tmp" "$out"
}

# build_dom0_base DIR writes DIR/dom0-base.cpio.
build_dom0_base() {
	local dir=$1 r=$1/dom0-root b f
	log "building the dom0 base initramfs"
	new_root "$r"
	mkdir -p "$r"/etc/xen "$r"/var/lib/xen "$r"/var/log/xen/console "$r"/usr/lib/xen-4.17/bin
	for b in "${XEN_BINS[@]}"; do
		f=$ROOT/usr/lib/xen-4.17/bin/$b
		[ -f "$f" ] || die "xen-utils-4.17 has no $b"
		install_file "$r" "$f" "/usr/lib/xen-4.17/bin/$b"
		install_libs "$r" "$f"
	done
	# xenstore-read/-write/-ls/-watch/-chmod/... are one binary under several names.
	# (Debian's symlinks there go through a bash wrapper; the real binaries are enough.)
	for f in "$ROOT"/usr/bin/xenstore*; do
		[ -L "$f" ] && continue
		install_file "$r" "$f" "/usr/bin/${f##*/}"
		install_libs "$r" "$f"
	done
	# xl dlopens nothing but aborts on pthread_cancel without libgcc_s (glibc loads it
	# lazily), so ldd cannot see it.
	install_file "$r" "$(libgcc_s)" /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
	cp -a "$ROOT"/etc/xen/. "$r"/etc/xen/
	# libxl runs the hotplug scripts in /etc/xen/scripts (disks, network) with bash, and
	# they lock with flock, which busybox lacks: both come from the host.
	for b in bash flock; do
		f=$(command -v "$b") || die "$b not found on the host"
		install_file "$r" "$f" "/bin/$b"
		install_libs "$r" "$f"
	done
	install_modules "$r" "${DOM0_MODULES[@]}"
	make_cpio "$r" "$dir/dom0-base.cpio"
	rm -rf "$r"
}

# extract_vmlinux writes the ELF kernel inside bzImage IN to OUT. The payload is found by
# its compression magic; decompressors stop at its end and complain about the trailing
# bytes, so success is judged by the result being an ELF file.
extract_vmlinux() {
	local in=$1 out=$2 magic off tool
	for magic in '\xfd7zXZ\x00:xz' '\x1f\x8b\x08:gzip' '\x28\xb5\x2f\xfd:zstd'; do
		tool=${magic##*:}
		off=$(LC_ALL=C grep -obUaP "${magic%:*}" "$in" | head -n1 | cut -d: -f1)
		[ -n "$off" ] || continue
		command -v "$tool" >/dev/null || die "$tool is needed to unpack the kernel (host-deps.sh)"
		tail -c +$((off + 1)) "$in" | "$tool" -dc >"$out" 2>/dev/null || true
		if [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = '177ELF' ]; then
			return
		fi
	done
	die "cannot find the ELF kernel inside $in"
}

# libgcc_s prints the host's libgcc_s.so.1 (Debian's libgcc-s1 is always installed).
libgcc_s() {
	local p
	for p in /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 /lib/x86_64-linux-gnu/libgcc_s.so.1; do
		[ -f "$p" ] && { echo "$p"; return; }
	done
	die "libgcc_s.so.1 not found on the host"
}

# prepare makes every base artifact, rebuilding only what the package set or this script
# changed.
prepare() {
	local list stamp k kpkg
	# One preparation at a time: parallel runs would rebuild the same files.
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	kpkg=$(kernel_package)
	list=$(fetch_debs "$DEBS" "${XEN_PKGS[@]}" "$kpkg" busybox-static)
	unpack "$DEBS" "$ROOT" "$list"
	k=$(kver)
	stamp="$list"$'\n'"$(sha256sum "$SELF" | cut -d' ' -f1)"
	if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ]; then
		log "up to date: $OUT"
		return
	fi
	# Build beside the old outputs and swap at the end, so a run that is reading them
	# never sees a half-built set.
	local new=$OUT.new
	rm -rf "$new"
	mkdir -p "$new"
	zcat "$ROOT/boot/xen-4.17-amd64.gz" >"$new/xen" || die "no Xen 4.17 hypervisor in the packages"
	cp "$ROOT/boot/vmlinuz-$k" "$new/vmlinuz" || die "no kernel image for $k"
	extract_vmlinux "$new/vmlinuz" "$new/vmlinux"
	build_dom0_base "$new"
	cat >"$new/testbed.env" <<-EOF
		TESTBED_KVER=$k
		TESTBED_XEN=$OUT/xen
		TESTBED_KERNEL=$OUT/vmlinuz
		TESTBED_VMLINUX=$OUT/vmlinux
		TESTBED_DOM0_BASE=$OUT/dom0-base.cpio
		TESTBED_ROOT=$ROOT
		TESTBED_PREPARE=$SELF
	EOF
	echo "$stamp" >"$new/.stamp"
	rm -rf "$OUT.old"
	[ ! -d "$OUT" ] || mv "$OUT" "$OUT.old"
	mv "$new" "$OUT"
	rm -rf "$OUT.old"
	log "ready: $OUT (kernel $k)"
}

# prepare_hvm [ovmf] makes the dom0 addition for HVM guests (after the base artifacts)
# and prints its path. The device model is built first, outside prepare's lock: its
# first build takes minutes and other test-bed runs need not wait for it.
prepare_hvm() {
	local variant=${1:-} dm list stamp name
	case $variant in "" | ovmf) ;; *) die "hvm: unknown variant '$variant' (only ovmf)" ;; esac
	local dmflags=()
	[ "$QUIET" = 0 ] || dmflags=(-q)
	dm=$("$HERE/devicemodel.sh" "${dmflags[@]}") || die "building the device model failed (devicemodel.sh)"
	prepare
	list=$(fetch_debs "$HVM_DEBS" "${HVM_PKGS[@]}")
	unpack "$HVM_DEBS" "$HVM_ROOT" "$list"
	name=dom0-hvm${variant:+-$variant}.cpio
	stamp="$list"$'\n'"$dm"$'\n'"$(sha256sum "$SELF" | cut -d' ' -f1)"
	if [ ! -f "$OUT/$name" ] || [ ! -f "$OUT/.stamp-$name" ] || [ "$(cat "$OUT/.stamp-$name")" != "$stamp" ]; then
		build_dom0_hvm "$dm" "$variant" "$OUT/$name"
		echo "$stamp" >"$OUT/.stamp-$name"
	fi
	echo "$OUT/$name"
}

# build_dom0_hvm DM VARIANT OUT writes OUT, an initramfs to append to dom0-base.cpio,
# with what libxl needs to start HVM guests, at the paths Debian's libxl looks for them:
# the device model /usr/libexec/xen-qemu-system-i386 (from the cache directory DM) with
# its libraries, hvmloader, SeaBIOS /usr/share/seabios/bios-256k.bin (hvmloader's BIOS;
# the VGA BIOSes for guests with a display), QEMU's option ROMs in /usr/share/qemu
# (linuxboot for kernel= guests), and for VARIANT ovmf /usr/share/ovmf/OVMF.fd.
build_dom0_hvm() {
	local dm=$1 variant=$2 out=$3 r f
	r=$(mktemp -d "${TMPDIR:-/tmp}/dom0-hvm.XXXXXX")
	log "building ${out##*/} (device model from $dm)"
	skeleton "$r"
	install_file "$r" "$dm/xen-qemu-system-i386" /usr/libexec/xen-qemu-system-i386
	EXTRA_LIBS=$dm/lib install_libs "$r" "$dm/xen-qemu-system-i386"
	install_file "$r" "$ROOT/usr/lib/xen-4.17/boot/hvmloader" /usr/lib/xen-4.17/boot/hvmloader
	for f in bios-256k.bin vgabios-stdvga.bin vgabios-cirrus.bin; do
		install_file "$r" "$HVM_ROOT/usr/share/seabios/$f" "/usr/share/seabios/$f"
	done
	for f in linuxboot.bin linuxboot_dma.bin pvh.bin multiboot.bin multiboot_dma.bin kvmvapic.bin; do
		install_file "$r" "$HVM_ROOT/usr/share/qemu/$f" "/usr/share/qemu/$f"
	done
	if [ "$variant" = ovmf ]; then
		install_file "$r" "$HVM_ROOT/usr/share/ovmf/OVMF.fd" /usr/share/ovmf/OVMF.fd
	fi
	# What dom0-base.cpio has already (glibc, the Xen libraries) need not come twice.
	(cd "$r" && "$ROOT/bin/busybox" cpio -t <"$OUT/dom0-base.cpio" 2>/dev/null |
		while read -r f; do [ ! -f "$f" ] || [ -L "$f" ] || rm -f "$f"; done)
	make_cpio "$r" "$out"
	rm -rf "$r"
}

# guest_initramfs builds a Linux domU initramfs: busybox, the given /init, optional host
# binaries or libraries with the shared libraries they need (--bin; a symlink keeps its
# name; add dlopen()ed libraries such as a TSS2 TCTI explicitly), optional kernel modules
# of the test-bed kernel with their dependencies (loaded by running /sbin/load-modules),
# optional extra files.
guest_initramfs() {
	local init="" out="" bins=() mods=() files=() gz=0
	while [ $# -gt 0 ]; do
		case $1 in
		--init) init=${2:?--init needs a file}; shift 2 ;;
		--out) out=${2:?--out needs a file}; shift 2 ;;
		--bin) bins+=("${2:?--bin needs a path}"); shift 2 ;;
		--module) mods+=("${2:?--module needs a name}"); shift 2 ;;
		--file) files+=("${2:?--file needs SRC:DEST}"); shift 2 ;;
		--gzip) gz=1; shift ;;
		*) die "guest-initramfs: unknown option $1" ;;
		esac
	done
	if [ -z "$init" ] || [ ! -f "$init" ]; then
		die "guest-initramfs: --init FILE is required (got '$init')"
	fi
	[ -n "$out" ] || die "guest-initramfs: --out FILE is required"
	QUIET=1 prepare
	local r b f
	r=$(mktemp -d "${TMPDIR:-/tmp}/guest-root.XXXXXX")
	# shellcheck disable=SC2064 # expand now: r is local
	trap "rm -rf '$r'" EXIT
	new_root "$r"
	install_file "$r" "$init" /init
	chmod 755 "$r/init"
	for b in "${bins[@]}"; do
		[ -e "$b" ] || die "guest-initramfs: no such file $b"
		b=$(readlink -f "$b")
		# Tools like tpm2-tools are one binary under many names: keep a link's name too.
		install_file "$r" "$b"
		install_libs "$r" "$b"
	done
	for b in "${bins[@]}"; do
		if [ -L "$b" ] && [ ! -e "$r$b" ]; then
			mkdir -p "$r$(dirname "$b")"
			ln -s "$(readlink -f "$b")" "$r$b"
		fi
	done
	install_modules "$r" "${mods[@]}"
	for f in "${files[@]}"; do
		[ -e "${f%%:*}" ] || die "guest-initramfs: no such file ${f%%:*}"
		install_file "$r" "${f%%:*}" "${f#*:}"
	done
	mkdir -p "$(dirname "$out")"
	make_cpio "$r" "$out"
	# Compressing pays off for large initramfs (tpm2-tools brings ~20 MB of libraries):
	# xl copies the whole file into the domain's memory.
	if [ "$gz" = 1 ]; then
		gzip -1 -c "$out" >"$out.gz" && mv "$out.gz" "$out"
	fi
	log "guest initramfs: $out ($(du -h "$out" | cut -f1))"
}

main() {
	if [ "${1:-}" = -q ]; then QUIET=1; shift; fi
	case ${1:-} in
	"") prepare ;;
	env) QUIET=1 prepare; cat "$OUT/testbed.env" ;;
	guest-initramfs) shift; guest_initramfs "$@" ;;
	hvm) shift; prepare_hvm "$@" ;;
	-h | --help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' ;;
	*) die "unknown command $1 (try --help)" ;;
	esac
}

main "$@"
