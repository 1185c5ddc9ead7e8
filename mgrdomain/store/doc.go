// Package store is the manager domain's disk store: a table of vTPM
// records (the SAVEHASHKEY blob plus metadata) keyed by the vTPM's UUID,
// in the format documented in docs/manager-storage.md, which this package
// follows.
//
// In short: the disk is an array of 4 KiB pages. Pages 0 and 1 hold two
// alternating superblocks (generation, rollback-counter value, root
// pointer, HMAC-SHA256 and CRC32C). Every other page is a node of a
// copy-on-write B+tree, sealed with XChaCha20-Poly1305 under a key derived
// from the caller's storage key; a parent holds each child's page number
// and AEAD tag, so the superblock authenticates the whole tree and a stale
// or moved page is detected. A commit writes new pages only to places
// that neither superblock on disk refers to, flushes, writes the older
// superblock's slot, and flushes again: a power cut at any point leaves
// the previous or the new state.
//
// The superblock binds a monotonic counter value, incremented by one per
// commit; the manager mirrors it in a hardware-TPM NV counter after each
// commit and passes the hardware value to Open, which refuses an older
// disk with ErrRollback.
//
// The package is pure Go over the Device interface, so it runs on the
// host in tests and in the tamago manager domain over blkfront.
package store
