package tpm2

// Dictionary-attack protection, Part 1 §19.8: failed authorizations of
// DA-protected entities count towards lockout; time heals them.

// daRecover forgets failures older than recoveryTime, one per interval.
func (t *TPM) daRecover() {
	if t.ps.RecoveryTime == 0 || t.ps.FailedTries == 0 {
		return
	}
	now := t.clockMS()
	if now < t.ps.DALastMS {
		t.ps.DALastMS = now
	}
	healed := (now - t.ps.DALastMS) / (uint64(t.ps.RecoveryTime) * 1000)
	if healed > 0 {
		if healed >= uint64(t.ps.FailedTries) {
			t.ps.FailedTries = 0
		} else {
			t.ps.FailedTries -= uint32(healed)
		}
		t.ps.DALastMS = now
	}
}

// daLocked reports whether authorizations of e are refused with
// TPM_RC_LOCKOUT.
func (t *TPM) daLocked(e *entity) bool {
	if e.handle == rhLockout {
		if t.ps.LockoutAuthLocked && t.ps.LockoutRecovery != 0 && t.clockMS()-t.ps.LockoutFailMS >= uint64(t.ps.LockoutRecovery)*1000 {
			t.ps.LockoutAuthLocked = false
		}
		return t.ps.LockoutAuthLocked
	}
	t.daRecover()
	return t.ps.FailedTries >= t.ps.MaxTries
}

// authFailure accounts a failed authorization of e in session n and
// returns the response code: TPM_RC_AUTH_FAIL for DA-protected entities,
// TPM_RC_BAD_AUTH for DA-exempt ones (Part 2 §6.6.3).
//
// A DA-exempt failure changes nothing. A DA-protected one changes the DA
// counters, which are written lazily, with the next save: a save per
// failure would let a guest wear the hardware out with wrong passwords.
// Only the first of a run is a durable change (DAUsed), so that a stop
// that loses later failures is answered with one counted at the next
// Startup.
func (t *TPM) authFailure(e *entity, n int) error {
	if e.noDA {
		return rcS(rcBadAuth, n, "authorization failure (DA exempt)")
	}
	if !t.ps.DAUsed {
		t.ps.DAUsed = true
		t.nvCheck = true
	}
	if e.handle == rhLockout {
		t.ps.LockoutAuthLocked = true
		t.ps.LockoutFailMS = t.clockMS()
		return rcS(rcAuthFail, n, "lockout authorization")
	}
	if t.ps.FailedTries < t.ps.MaxTries {
		t.ps.FailedTries++
	}
	t.ps.DALastMS = t.clockMS()
	return rcS(rcAuthFail, n, "authorization failure")
}
