# ../testbed-persist's test (copied to /test by build.sh), unchanged, with a
# TPM 1.2 as the manager's hardware: guest → vTPM domain → manager →
# TPM_Seal and a monotonic counter, hwinitpcr= through TPM_PcrRead.
# Sourced by dom0's init with testlib.sh loaded.
. /test/persist-dom0-test.sh
