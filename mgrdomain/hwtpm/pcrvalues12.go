package hwtpm

// PCRValues reads pcrs from the SHA-1 bank (TPM_PcrRead each), as
// (*TPM).PCRValues reads the SHA-256 bank: the manager checks a group's
// approved configurations against them.
func (t *TPM12) PCRValues(pcrs []uint) ([][]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readPCRs(pcrs)
}
