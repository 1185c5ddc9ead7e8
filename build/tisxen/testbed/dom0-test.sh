# tpm_tis through Xen iomem passthrough, TPM 2.0 (swtpm behind QEMU's
# tpm-tis; scenario.conf). The checks are in tisxen-checks.sh, shared with
# ../testbed-tpm12. Sourced by dom0's init with testlib.sh loaded.
TISXEN_FAMILY=2.0
. /test/tisxen-checks.sh
