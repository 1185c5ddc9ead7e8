package tpm12

import "time"

// lockoutThreshold is the number of authorization failures the TPM
// forgives before it defends against a dictionary attack; libtpms' value.
const lockoutThreshold = 5

// daState is the dictionary-attack mitigation of Part 1 §19.2, which the
// specification leaves to the vendor; this one is libtpms': every failed
// authorization HMAC counts, a success does not uncount (that would let
// anyone knowing one good secret attack another), and from the sixth
// failure on each failure locks authorized commands out for 1 s, then
// 2 s, 4 s, ... Only TPM_ResetLockValue with owner authorization resets
// the count. Like libtpms' TPM_STCLEAR_DATA it is volatile: a power
// cycle clears it.
type daState struct {
	failCount uint32
	failTime  time.Time
	// disableResetLock is TPM_STCLEAR_DATA.disableResetLock: a failed
	// TPM_ResetLockValue locks that command out for the lockout period.
	disableResetLock bool
}

// authFailed records a failed authorization.
func (t *TPM) authFailed() {
	t.da.failCount++
	if t.da.failCount > lockoutThreshold {
		t.da.failTime = t.now()
	}
}

// lockedOut reports whether a lockout period is running, and ends
// disableResetLock once none is.
func (t *TPM) lockedOut() bool {
	if t.da.failCount > lockoutThreshold {
		wait := time.Second << min(t.da.failCount-lockoutThreshold-1, 32)
		if t.now().Sub(t.da.failTime) < wait {
			return true
		}
	}
	t.da.disableResetLock = false
	return false
}

// resetLockValue is TPM_ResetLockValue, Part 3 §9.3: the owner ends the
// lockout and clears the failure count. A wrong owner authorization
// also disables the command for the lockout period.
func (t *TPM) resetLockValue(c *call, _ *none) (*none, error) {
	t.lockedOut()
	if t.da.disableResetLock {
		return nil, rcE(rcAuthFail, "TPM_ResetLockValue disabled")
	}
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		t.da.disableResetLock = true
		return nil, err
	}
	t.da.failCount = 0
	return &none{}, nil
}
