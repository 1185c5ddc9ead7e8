# tpm_tis through Xen iomem passthrough, TPM 1.2 (swtpm behind QEMU's
# tpm-tis; scenario.conf). The checks are ../testbed/tisxen-checks.sh, copied
# to /test by build.sh. Sourced by dom0's init with testlib.sh loaded.
TISXEN_FAMILY=1.2
. /test/tisxen-checks.sh
