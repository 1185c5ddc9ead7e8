package hwtpm

// TPM 1.2 non-fatal return codes that mean "not now" (TPM 1.2 Part 2,
// 16: TPM_NON_FATAL + n).
const (
	rc12Retry         = 0x800 // TPM_RETRY: busy, try again
	rc12DoingSelftest = 0x802 // TPM_DOING_SELFTEST
)

// IsBusy reports whether err is the TPM asking to be asked again later
// rather than refusing: on TPM 2.0 the warnings TPM_RC_NV_RATE (it
// rate-limits NV writes to limit wear), _RETRY, _YIELDED, _TESTING and
// _NV_UNAVAILABLE (Part 2, 6.6.3); on TPM 1.2 TPM_RETRY, TPM_DOING_SELFTEST
// and TPM_DEFEND_LOCK_RUNNING (its dictionary-attack defence is running
// after wrong passwords from someone else: it ends by itself). The TPM 2.0
// layer already retries these within one command for up to 10 s; a caller
// seeing IsBusy after that may retry later, and nothing was written.
func IsBusy(err error) bool {
	if err == nil {
		return false
	}
	if retryable(err) {
		return true
	}
	rc, ok := rc12(err)
	return ok && (rc == rc12Retry || rc == rc12DoingSelftest || rc == rc12DefendLockRunning)
}
