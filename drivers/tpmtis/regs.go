package tpmtis

// Register offsets inside one locality's 4 KiB page (TIS 1.3 §11.2 and
// PTP §6.5.2, Table "FIFO Interface Registers").
const (
	regAccess     = 0x000 // TPM_ACCESS_x, 8 bits
	regIntEnable  = 0x008 // TPM_INT_ENABLE_x, 32 bits
	regIntVector  = 0x00C // TPM_INT_VECTOR_x, 8 bits
	regIntStatus  = 0x010 // TPM_INT_STATUS_x, 32 bits
	regIntfCap    = 0x014 // TPM_INTF_CAPABILITY_x, 32 bits
	regSts        = 0x018 // TPM_STS_x, 32 bits (burstCount in bits 8..23)
	regDataFIFO   = 0x024 // TPM_DATA_FIFO_x, byte access
	regInterface  = 0x030 // TPM_INTERFACE_ID_x, 32 bits (PTP only)
	regDIDVID     = 0xF00 // TPM_DID_VID_x, 32 bits
	regRID        = 0xF04 // TPM_RID_x, 8 bits
	pageSize      = 0x1000
	maxLocalities = 5
)

// TPM_ACCESS_x bits.
const (
	accessEstablishment  = 1 << 0 // reads 1 when tpmEstablished is *clear* (inverted in TIS)
	accessRequestUse     = 1 << 1
	accessPendingRequest = 1 << 2
	accessSeize          = 1 << 3
	accessBeenSeized     = 1 << 4
	accessActiveLocality = 1 << 5
	accessRegValidSts    = 1 << 7
)

// TPM_STS_x bits.
const (
	stsResponseRetry = 1 << 1
	stsSelfTestDone  = 1 << 2
	stsExpect        = 1 << 3
	stsDataAvail     = 1 << 4
	stsGo            = 1 << 5
	stsCommandReady  = 1 << 6
	stsValid         = 1 << 7
	stsBurstShift    = 8
	stsBurstMask     = 0xFFFF
	stsCommandCancel = 1 << 24 // PTP only
	stsFamilyShift   = 26      // PTP only: 0 = TPM 1.2, 1 = TPM 2.0
	stsFamilyMask    = 0x3
)

// TPM_INTF_CAPABILITY_x InterfaceVersion (bits 28..30).
const (
	intfVersionShift  = 28
	intfVersionMask   = 0x7
	intfVersionTIS12  = 0 // TIS 1.2, TPM 1.2
	intfVersionTIS13  = 2 // TIS 1.3, TPM 1.2
	intfVersionPTPFIF = 3 // PTP FIFO, TPM 2.0
)

// TPM_INTERFACE_ID_x InterfaceType (bits 0..3).
const (
	ifTypeMask  = 0xF
	ifTypeFIFO  = 0x0 // PTP FIFO for TPM 2.0
	ifTypeCRB   = 0x1 // CRB: a different interface, not driven here
	ifTypeTIS13 = 0xF // register not implemented: a TIS 1.3 (TPM 1.2) part
)

// Registers is the register window of one locality: offsets are relative to
// base + locality·0x1000 and never leave that 4 KiB page, so a driver built on
// it cannot touch another locality's registers. Every call must reach the
// device (no caching, no merging, no reordering): the FIFO register pops or
// pushes one byte per 8-bit access and STS changes on its own.
type Registers interface {
	Read8(off uint32) uint8
	Write8(off uint32, v uint8)
	Read32(off uint32) uint32
	Write32(off uint32, v uint32)
}
