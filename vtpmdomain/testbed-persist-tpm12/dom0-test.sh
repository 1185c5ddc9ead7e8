# ../testbed-persist's test (copied to /test by build.sh), with a TPM 1.2
# as the manager's hardware: guest → vTPM domain → manager → TPM_Seal and a
# monotonic counter, hwinitpcr= through TPM_PcrRead. Before its last step
# (the manager's disk rolled back) a TPM 1.2 vTPM domain runs under the
# same manager (tpm12-dom0.sh).
# Sourced by dom0's init with testlib.sh loaded.
before_rollback() { . /test/tpm12-dom0.sh; }
. /test/persist-dom0-test.sh
