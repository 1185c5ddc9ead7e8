package tpm2

// Dictionary-attack protection, Part 1 §19.8: failed authorizations of
// DA-protected entities count towards lockout; time heals them.

// daRecover forgets failures older than recoveryTime, one per interval.
func (t *TPM) daRecover() {
	if t.ps.RecoveryTime == 0 || t.ps.FailedTries == 0 {
		return
	}
	now := t.clockMS()
	if now < t.daLastMS {
		t.daLastMS = now
	}
	healed := (now - t.daLastMS) / (uint64(t.ps.RecoveryTime) * 1000)
	if healed > 0 {
		if healed >= uint64(t.ps.FailedTries) {
			t.ps.FailedTries = 0
		} else {
			t.ps.FailedTries -= uint32(healed)
		}
		t.daLastMS = now
	}
}

// daLocked reports whether authorizations of e are refused with
// TPM_RC_LOCKOUT.
func (t *TPM) daLocked(e *entity) bool {
	if e.handle == rhLockout {
		if t.ps.LockoutAuthLocked && t.ps.LockoutRecovery != 0 && t.clockMS()-t.lockoutFailMS >= uint64(t.ps.LockoutRecovery)*1000 {
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
func (t *TPM) authFailure(e *entity, n int) error {
	t.nvDirty = true
	if e.handle == rhLockout {
		t.ps.LockoutAuthLocked = true
		t.lockoutFailMS = t.clockMS()
		return rcS(rcAuthFail, n, "lockout authorization")
	}
	if e.noDA {
		return rcS(rcBadAuth, n, "authorization failure (DA exempt)")
	}
	if t.ps.FailedTries < t.ps.MaxTries {
		t.ps.FailedTries++
	}
	t.daLastMS = t.clockMS()
	return rcS(rcAuthFail, n, "authorization failure")
}
