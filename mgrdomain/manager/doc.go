// Package manager is the core of the manager domain: it implements
// proto.Backend, proto.PCRReader and proto.Admin (Xen vtpmmgr's
// SAVEHASHKEY, LOADHASHKEY, GetRandom, PcrRead and the group and vTPM
// management ordinals) on top of the crash-safe store
// (package store) and the hardware TPM (package hwtpm), and follows
// docs/manager-storage.md, "The manager's disk and the hardware TPM".
//
// Disk: two 4 KiB header slots (the storage key sealed to the hardware
// TPM, HMAC'd under that key), then the store. Start-up formats a blank
// disk, or unseals the storage key, reads the hardware NV counter and
// opens the store with it as the rollback floor; an older disk is refused
// (ErrRollback), a disk one save ahead (a power cut between commit and
// increment) is accepted and the counter caught up.
//
// A save is: store commit (two device flushes), then one hardware counter
// increment (TPM2_NV_Increment, or TPM_IncrementCounter on TPM 1.2), then
// the acknowledgement. Saves are committed in groups (one commit, one
// increment for the group), at most one pending save per vTPM (the newest
// state wins), under a cap on hardware NV writes with a fair share per
// vTPM; the hardware's "retry later" is back-pressure, answered TPM_RETRY
// when it lasts, never a reason to stop (save.go).
//
// Groups (groups.go): every vTPM record belongs to a group, whose System
// Approval Agent signs the configurations its vTPMs' keys may be released
// in; group 0's approvals also seal the storage key in the hardware TPM
// (approve.go). Management requests come only from admin= domains.
//
// Autocreate is on by default: an unknown UUID gets a record on its first
// SAVEHASHKEY, in group 0 or the group autocreate= names. The UUID is not
// chosen by the vTPM but read from its backend directory, which only the
// toolstack in dom0 writes, and dom0 is trusted with the vTPMs anyway (it
// creates and destroys them). With autocreate=0 the administrator creates
// each vTPM (VTPM_NEW, `xenvtpm vtpm add`) and an unknown UUID is refused.
// What autocreate does not do is hand out anything: LOADHASHKEY of an
// unknown UUID is "not found", and the vTPM then refuses to start unless
// told to create a fresh TPM.
//
// Pure Go; builds for tamago.
package manager
