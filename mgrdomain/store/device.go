package store

// Device is a block device addressed in sectors: blkfront in the manager
// domain, a memory or file image in tests and tools.
//
// The store calls it from one goroutine at a time (under its lock), so an
// implementation need not be safe for concurrent use.
//
// Writes between two Flush calls may reach the medium in any order and a
// sector being written when power fails may be torn; the store assumes
// only that once Flush returns, every write issued before it is durable.
type Device interface {
	// ReadAt reads len(p) bytes, a multiple of SectorSize, from sector on.
	ReadAt(p []byte, sector uint64) error
	// WriteAt writes len(p) bytes, a multiple of SectorSize, from sector on.
	WriteAt(p []byte, sector uint64) error
	// SectorSize is the sector size in bytes: a power of two, 512..4096.
	SectorSize() int
	// Sectors is the device size in sectors.
	Sectors() uint64
	// Flush makes every completed write durable (a cache-flush barrier).
	Flush() error
}
