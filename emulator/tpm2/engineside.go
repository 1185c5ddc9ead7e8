package tpm2

import (
	"errors"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Engine-side command and response structures: declared here because
// go-tpm has none for the command, or has one whose concrete handle types
// its decoder cannot fill. They exist to decode commands and encode
// responses, never to send them, so their Execute methods fail.

// errEngineSide is what the Execute methods of these structures return.
var errEngineSide = errors.New("tpm2: engine-side command structure")

// emptyResponse is the response of commands that return no parameters.
type emptyResponse struct{}

// Random numbers, Part 3 §16.

type stirRandomCmd struct {
	InData gt.TPM2BData
}

func (stirRandomCmd) Command() gt.TPMCC { return gt.TPMCCStirRandom }
func (stirRandomCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// Start-up and testing, Part 3 §9–10.

type incrementalSelfTestCmd struct {
	ToTest gt.TPMLAlg
}

func (incrementalSelfTestCmd) Command() gt.TPMCC { return gt.TPMCCIncrementalSelfTest }
func (incrementalSelfTestCmd) Execute(transport.TPM, ...gt.Session) (*incrementalSelfTestResponse, error) {
	return nil, errEngineSide
}

type selfTestCmd struct {
	FullTest gt.TPMIYesNo
}

func (selfTestCmd) Command() gt.TPMCC { return gt.TPMCCSelfTest }
func (selfTestCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type getTestResultCmd struct{}

func (getTestResultCmd) Command() gt.TPMCC { return gt.TPMCCGetTestResult }
func (getTestResultCmd) Execute(transport.TPM, ...gt.Session) (*getTestResultResponse, error) {
	return nil, errEngineSide
}

type incrementalSelfTestResponse struct {
	ToDoList gt.TPMLAlg
}

type getTestResultResponse struct {
	OutData    gt.TPM2BMaxBuffer
	TestResult uint32 // TPM_RC
}

// Policy sessions, Part 3 §11.2 and §23, and duplication, Part 3 §13.
// go-tpm has no PolicyRestart, PolicyLocality, PolicyNameHash or
// PolicyPassword; none of them returns parameters.

type policyRestartCmd struct {
	SessionHandle gt.UnmarshalledHandle `gotpm:"handle"`
}

func (policyRestartCmd) Command() gt.TPMCC { return gt.TPMCCPolicyRestart }
func (policyRestartCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// duplicateCmd: symmetricAlg is a TPMT_SYM_DEF_OBJECT (Part 3 §13.1),
// where go-tpm's Duplicate has a TPMT_SYM_DEF.
type duplicateCmd struct {
	ObjectHandle    gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewParentHandle gt.UnmarshalledHandle `gotpm:"handle"`
	EncryptionKeyIn gt.TPM2BData
	Symmetric       gt.TPMTSymDefObject
}

func (duplicateCmd) Command() gt.TPMCC { return gt.TPMCCDuplicate }
func (duplicateCmd) Execute(transport.TPM, ...gt.Session) (*gt.DuplicateResponse, error) {
	return nil, errEngineSide
}

// importCmd: objectPublic stays bytes so that parsePublic checks it with
// the engine's response codes, and symmetricAlg is a TPMT_SYM_DEF_OBJECT
// (Part 3 §13.3), where go-tpm's Import has a TPMT_SYM_DEF.
type importCmd struct {
	ParentHandle  gt.UnmarshalledHandle `gotpm:"handle,auth"`
	EncryptionKey gt.TPM2BData
	ObjectPublic  gt.TPM2BData
	Duplicate     gt.TPM2BPrivate
	InSymSeed     gt.TPM2BEncryptedSecret
	Symmetric     gt.TPMTSymDefObject
}

func (importCmd) Command() gt.TPMCC { return gt.TPMCCImport }
func (importCmd) Execute(transport.TPM, ...gt.Session) (*gt.ImportResponse, error) {
	return nil, errEngineSide
}

// rewrapCmd: go-tpm has no TPM2_Rewrap (Part 3 §13.2).
type rewrapCmd struct {
	OldParent   gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewParent   gt.UnmarshalledHandle `gotpm:"handle"`
	InDuplicate gt.TPM2BPrivate
	Name        gt.TPM2BName
	InSymSeed   gt.TPM2BEncryptedSecret
}

type rewrapResponse struct {
	OutDuplicate gt.TPM2BPrivate
	OutSymSeed   gt.TPM2BEncryptedSecret
}

func (rewrapCmd) Command() gt.TPMCC { return gt.TPMCCRewrap }
func (rewrapCmd) Execute(transport.TPM, ...gt.Session) (*rewrapResponse, error) {
	return nil, errEngineSide
}

type policyLocalityCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
	Locality      uint8
}

func (policyLocalityCmd) Command() gt.TPMCC { return gt.TPMCCPolicyLocality }
func (policyLocalityCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type policyNameHashCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
	NameHash      gt.TPM2BDigest
}

func (policyNameHashCmd) Command() gt.TPMCC { return gt.TPMCCPolicyNameHash }
func (policyNameHashCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type policyPasswordCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
}

func (policyPasswordCmd) Command() gt.TPMCC { return gt.TPMCCPolicyPassword }
func (policyPasswordCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// Object commands, Part 3 §12 and §24.1. go-tpm's TPM2B_SENSITIVE_CREATE
// cannot be decoded (its union has no decoder), so the engine reads the
// sized buffers itself.

type createPrimaryCmd struct {
	PrimaryHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	InSensitive   gt.TPM2BData
	InPublic      gt.TPM2BData
	OutsideInfo   gt.TPM2BData
	CreationPCR   gt.TPMLPCRSelection
}

func (createPrimaryCmd) Command() gt.TPMCC { return gt.TPMCCCreatePrimary }
func (createPrimaryCmd) Execute(transport.TPM, ...gt.Session) (*gt.CreatePrimaryResponse, error) {
	return nil, errEngineSide
}

type createCmd struct {
	ParentHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	InSensitive  gt.TPM2BData
	InPublic     gt.TPM2BData
	OutsideInfo  gt.TPM2BData
	CreationPCR  gt.TPMLPCRSelection
}

func (createCmd) Command() gt.TPMCC { return gt.TPMCCCreate }
func (createCmd) Execute(transport.TPM, ...gt.Session) (*gt.CreateResponse, error) {
	return nil, errEngineSide
}

type createLoadedCmd struct {
	ParentHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	InSensitive  gt.TPM2BData
	InPublic     gt.TPM2BData
}

func (createLoadedCmd) Command() gt.TPMCC { return gt.TPMCCCreateLoaded }
func (createLoadedCmd) Execute(transport.TPM, ...gt.Session) (*gt.CreateLoadedResponse, error) {
	return nil, errEngineSide
}

type loadCmd struct {
	ParentHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	InPrivate    gt.TPM2BData
	InPublic     gt.TPM2BData
}

func (loadCmd) Command() gt.TPMCC { return gt.TPMCCLoad }
func (loadCmd) Execute(transport.TPM, ...gt.Session) (*gt.LoadResponse, error) {
	return nil, errEngineSide
}

type loadExternalCmd struct {
	InPrivate gt.TPM2BData
	InPublic  gt.TPM2BData
	Hierarchy gt.TPMIRHHierarchy
}

func (loadExternalCmd) Command() gt.TPMCC { return gt.TPMCCLoadExternal }
func (loadExternalCmd) Execute(transport.TPM, ...gt.Session) (*gt.LoadExternalResponse, error) {
	return nil, errEngineSide
}

// Context management, Part 3 §28.

// contextSaveCmd: saveHandle is in the handle area (Part 3 §28.2), which
// the kernel resource manager relies on when it virtualizes handles.
type contextSaveCmd struct {
	SaveHandle gt.UnmarshalledHandle `gotpm:"handle"`
}

func (contextSaveCmd) Command() gt.TPMCC { return gt.TPMCCContextSave }
func (contextSaveCmd) Execute(transport.TPM, ...gt.Session) (*gt.ContextSaveResponse, error) {
	return nil, errEngineSide
}

// contextLoadCmd is go-tpm's ContextLoad with a response whose
// loadedHandle is in the response handle area, as Part 3 §28.3 has it
// and resource managers rely on; go-tpm's ContextLoadResponse declares
// it a parameter.
type contextLoadCmd struct {
	Context gt.TPMSContext
}

func (contextLoadCmd) Command() gt.TPMCC { return gt.TPMCCContextLoad }
func (contextLoadCmd) Execute(transport.TPM, ...gt.Session) (*contextLoadResponse, error) {
	return nil, errEngineSide
}

type contextLoadResponse struct {
	LoadedHandle gt.TPMIDHContext `gotpm:"handle"`
}

// flushContextCmd: flushHandle is a parameter (Part 3 §28.4); go-tpm
// declares it a handle.
type flushContextCmd struct {
	FlushHandle gt.TPMHandle
}

func (flushContextCmd) Command() gt.TPMCC { return gt.TPMCCFlushContext }
func (flushContextCmd) Execute(transport.TPM, ...gt.Session) (*gt.FlushContextResponse, error) {
	return nil, errEngineSide
}

// Credentials, Part 3 §12.5–12.6; asymmetric and symmetric primitives,
// Part 3 §14–15; hash, HMAC and event sequences, Part 3 §17.

// makeCredentialCmd: go-tpm's MakeCredential declares its handle as a
// TPMIDHObject, which its decoder cannot fill.
type makeCredentialCmd struct {
	Handle     gt.UnmarshalledHandle `gotpm:"handle"`
	Credential gt.TPM2BDigest
	ObjectName gt.TPM2BName
}

func (makeCredentialCmd) Command() gt.TPMCC { return gt.TPMCCMakeCredential }
func (makeCredentialCmd) Execute(transport.TPM, ...gt.Session) (*gt.MakeCredentialResponse, error) {
	return nil, errEngineSide
}

// ecdhKeyGenCmd: go-tpm has no ECDH_KeyGen.
type ecdhKeyGenCmd struct {
	KeyHandle gt.UnmarshalledHandle `gotpm:"handle"`
}

// ecdhKeyGenResponse is TPM2_ECDH_KeyGen's response, Part 3 §14.4.
type ecdhKeyGenResponse struct {
	ZPoint   gt.TPM2BECCPoint
	PubPoint gt.TPM2BECCPoint
}

func (ecdhKeyGenCmd) Command() gt.TPMCC { return gt.TPMCCECDHKeyGen }
func (ecdhKeyGenCmd) Execute(transport.TPM, ...gt.Session) (*ecdhKeyGenResponse, error) {
	return nil, errEngineSide
}

// encryptDecryptCmd: go-tpm has only EncryptDecrypt2.
type encryptDecryptCmd struct {
	KeyHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	Decrypt   gt.TPMIYesNo
	Mode      gt.TPMIAlgSymMode
	IVIn      gt.TPM2BIV
	InData    gt.TPM2BMaxBuffer
}

// encryptDecryptResponse is TPM2_EncryptDecrypt's response, Part 3 §15.2.
type encryptDecryptResponse struct {
	OutData gt.TPM2BMaxBuffer
	IVOut   gt.TPM2BIV
}

func (encryptDecryptCmd) Command() gt.TPMCC { return gt.TPMCCEncryptDecrypt }
func (encryptDecryptCmd) Execute(transport.TPM, ...gt.Session) (*encryptDecryptResponse, error) {
	return nil, errEngineSide
}

// hmacCmd: go-tpm's Hmac declares its handle as an AuthHandle, which its
// decoder cannot fill.
type hmacCmd struct {
	Handle  gt.UnmarshalledHandle `gotpm:"handle,auth"`
	Buffer  gt.TPM2BMaxBuffer
	HashAlg gt.TPMIAlgHash
}

func (hmacCmd) Command() gt.TPMCC { return gt.TPMCCHMAC }
func (hmacCmd) Execute(transport.TPM, ...gt.Session) (*gt.HmacResponse, error) {
	return nil, errEngineSide
}

// hashSequenceStartCmd is go-tpm's HashSequenceStart, whose response
// structure does not tag sequenceHandle as a handle: go-tpm would encode
// it among the response parameters, where Part 3 §17.4 has it in the
// handle area.
type hashSequenceStartCmd struct {
	Auth    gt.TPM2BAuth
	HashAlg gt.TPMIAlgHash
}

// hashSequenceStartResponse is TPM2_HashSequenceStart's response, Part 3
// §17.4.
type hashSequenceStartResponse struct {
	SequenceHandle gt.TPMIDHObject `gotpm:"handle"`
}

func (hashSequenceStartCmd) Command() gt.TPMCC { return gt.TPMCCHashSequenceStart }
func (hashSequenceStartCmd) Execute(transport.TPM, ...gt.Session) (*hashSequenceStartResponse, error) {
	return nil, errEngineSide
}

// eventSequenceCompleteCmd: go-tpm has no EventSequenceComplete.
type eventSequenceCompleteCmd struct {
	PCRHandle      gt.UnmarshalledHandle `gotpm:"handle,auth"`
	SequenceHandle gt.UnmarshalledHandle `gotpm:"handle,auth,anon"`
	Buffer         gt.TPM2BMaxBuffer
}

// eventSequenceCompleteResponse is TPM2_EventSequenceComplete's response,
// Part 3 §17.7.
type eventSequenceCompleteResponse struct {
	Results gt.TPMLDigestValues
}

func (eventSequenceCompleteCmd) Command() gt.TPMCC { return gt.TPMCCEventSequenceComplete }
func (eventSequenceCompleteCmd) Execute(transport.TPM, ...gt.Session) (*eventSequenceCompleteResponse, error) {
	return nil, errEngineSide
}

// Attestation and the clock, Part 3 §18 and §29.

type getTimeCmd struct {
	PrivacyAdminHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	SignHandle         gt.UnmarshalledHandle `gotpm:"handle,auth"`
	QualifyingData     gt.TPM2BData
	InScheme           gt.TPMTSigScheme
}

func (getTimeCmd) Command() gt.TPMCC { return gt.TPMCCGetTime }
func (getTimeCmd) Execute(transport.TPM, ...gt.Session) (*gt.GetTimeResponse, error) {
	return nil, errEngineSide
}

type clockSetCmd struct {
	Auth    gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewTime uint64
}

func (clockSetCmd) Command() gt.TPMCC { return gt.TPMCCClockSet }
func (clockSetCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// PCRs, Part 3 §22.

type pcrAllocateCmd struct {
	AuthHandle    gt.UnmarshalledHandle `gotpm:"handle,auth"`
	PCRAllocation gt.TPMLPCRSelection
}

func (pcrAllocateCmd) Command() gt.TPMCC { return gt.TPMCCPCRAllocate }
func (pcrAllocateCmd) Execute(transport.TPM, ...gt.Session) (*pcrAllocateResponse, error) {
	return nil, errEngineSide
}

// pcrEventCmd is gt.PCREvent with the response go-tpm v0.9.8 lacks (its
// PCREventResponse has no fields; the TPM returns the event's digests).
type pcrEventCmd struct {
	PCRHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	EventData gt.TPM2BEvent
}

func (pcrEventCmd) Command() gt.TPMCC { return gt.TPMCCPCREvent }
func (pcrEventCmd) Execute(transport.TPM, ...gt.Session) (*pcrEventResponse, error) {
	return nil, errEngineSide
}

type pcrEventResponse struct {
	Digests gt.TPMLDigestValues
}

// pcrAllocateResponse is TPM2_PCR_Allocate's response, Part 3 §22.5.
type pcrAllocateResponse struct {
	AllocationSuccess gt.TPMIYesNo
	MaxPCR            uint32
	SizeNeeded        uint32
	SizeAvailable     uint32
}

// Hierarchy commands, Part 3 §24.

type hierarchyControlCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	Enable     gt.TPMIRHEnables
	State      gt.TPMIYesNo
}

func (hierarchyControlCmd) Command() gt.TPMCC { return gt.TPMCCHierarchyControl }
func (hierarchyControlCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type setPrimaryPolicyCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	AuthPolicy gt.TPM2BDigest
	HashAlg    gt.TPMIAlgHash
}

func (setPrimaryPolicyCmd) Command() gt.TPMCC { return gt.TPMCCSetPrimaryPolicy }
func (setPrimaryPolicyCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// changeSeedCmd is the layout of TPM2_ChangePPS and TPM2_ChangeEPS.
type changeSeedCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
}

type changeEPSCmd changeSeedCmd
type changePPSCmd changeSeedCmd

func (changePPSCmd) Command() gt.TPMCC { return gt.TPMCCChangePPS }
func (changePPSCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}
func (changeEPSCmd) Command() gt.TPMCC { return gt.TPMCCChangeEPS }
func (changeEPSCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type clearControlCmd struct {
	Auth    gt.UnmarshalledHandle `gotpm:"handle,auth"`
	Disable gt.TPMIYesNo
}

func (clearControlCmd) Command() gt.TPMCC { return gt.TPMCCClearControl }
func (clearControlCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// Dictionary attack functions, Part 3 §25.

type daLockResetCmd struct {
	LockHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
}

func (daLockResetCmd) Command() gt.TPMCC { return gt.TPMCCDictionaryAttackLockReset }
func (daLockResetCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type daParametersCmd struct {
	LockHandle      gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewMaxTries     uint32
	NewRecoveryTime uint32
	LockoutRecovery uint32
}

func (daParametersCmd) Command() gt.TPMCC { return gt.TPMCCDictionaryAttackParameters }
func (daParametersCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// Miscellaneous management functions, Part 3 §26.

type ppCommandsCmd struct {
	Auth      gt.UnmarshalledHandle `gotpm:"handle,auth"`
	SetList   gt.TPMLCC
	ClearList gt.TPMLCC
}

func (ppCommandsCmd) Command() gt.TPMCC { return gt.TPMCCPPCommands }
func (ppCommandsCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type setAlgorithmSetCmd struct {
	Auth         gt.UnmarshalledHandle `gotpm:"handle,auth"`
	AlgorithmSet uint32
}

func (setAlgorithmSetCmd) Command() gt.TPMCC { return gt.TPMCCSetAlgorithmSet }
func (setAlgorithmSetCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// Non-volatile storage, Part 3 §31.

// nvDefineSpaceCmd carries publicInfo as a sized buffer, decoded by the
// handler with go-tpm's TPMS_NV_PUBLIC decoder, so that a bad public area
// reports the right parameter.
type nvDefineSpaceCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	Auth       gt.TPM2BAuth
	PublicInfo gt.TPM2BData
}

func (nvDefineSpaceCmd) Command() gt.TPMCC { return gt.TPMCCNVDefineSpace }
func (nvDefineSpaceCmd) Execute(transport.TPM, ...gt.Session) (*gt.NVDefineSpaceResponse, error) {
	return nil, errEngineSide
}

type nvExtendCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NVIndex    gt.UnmarshalledHandle `gotpm:"handle"`
	Data       gt.TPM2BMaxNVBuffer
}

func (nvExtendCmd) Command() gt.TPMCC { return gt.TPMCCNVExtend }
func (nvExtendCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type nvSetBitsCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NVIndex    gt.UnmarshalledHandle `gotpm:"handle"`
	Bits       uint64
}

func (nvSetBitsCmd) Command() gt.TPMCC { return gt.TPMCCNVSetBits }
func (nvSetBitsCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type nvGlobalWriteLockCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
}

func (nvGlobalWriteLockCmd) Command() gt.TPMCC { return gt.TPMCCNVGlobalWriteLock }
func (nvGlobalWriteLockCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type nvChangeAuthCmd struct {
	NVIndex gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewAuth gt.TPM2BAuth
}

func (nvChangeAuthCmd) Command() gt.TPMCC { return gt.TPMCCNVChangeAuth }
func (nvChangeAuthCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// Enhanced authorization commands go-tpm v0.9.8 does not declare, Part 3
// §23.

type policyTicketCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
	Timeout       gt.TPM2BTimeout
	CPHashA       gt.TPM2BDigest
	PolicyRef     gt.TPM2BNonce
	AuthName      gt.TPM2BName
	Ticket        gt.TPMTTKAuth
}

func (policyTicketCmd) Command() gt.TPMCC { return gt.TPMCCPolicyTicket }
func (policyTicketCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type policyCounterTimerCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
	OperandB      gt.TPM2BOperand
	Offset        uint16
	Operation     gt.TPMEO
}

func (policyCounterTimerCmd) Command() gt.TPMCC { return gt.TPMCCPolicyCounterTimer }
func (policyCounterTimerCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type policyPhysicalPresenceCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
}

func (policyPhysicalPresenceCmd) Command() gt.TPMCC { return gt.TPMCCPolicyPhysicalPresence }
func (policyPhysicalPresenceCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

type policyTemplateCmd struct {
	PolicySession gt.UnmarshalledHandle `gotpm:"handle"`
	TemplateHash  gt.TPM2BDigest
}

func (policyTemplateCmd) Command() gt.TPMCC { return gt.TPMCCPolicyTemplate }
func (policyTemplateCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// clockRateAdjustCmd is TPM2_ClockRateAdjust, Part 3 §29.3.
type clockRateAdjustCmd struct {
	Auth       gt.UnmarshalledHandle `gotpm:"handle,auth"`
	RateAdjust uint8                 // TPM_CLOCK_ADJUST, a signed octet
}

func (clockRateAdjustCmd) Command() gt.TPMCC { return gt.TPMCCClockRateAdjust }
func (clockRateAdjustCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// getCommandAuditDigestCmd is TPM2_GetCommandAuditDigest, Part 3 §18.6;
// its response has GetSessionAuditDigest's shape.
type getCommandAuditDigestCmd struct {
	PrivacyHandle  gt.UnmarshalledHandle `gotpm:"handle,auth"`
	SignHandle     gt.UnmarshalledHandle `gotpm:"handle,auth"`
	QualifyingData gt.TPM2BData
	InScheme       gt.TPMTSigScheme
}

func (getCommandAuditDigestCmd) Command() gt.TPMCC { return gt.TPMCCGetCommandAuditDigest }
func (getCommandAuditDigestCmd) Execute(transport.TPM, ...gt.Session) (*gt.GetSessionAuditDigestResponse, error) {
	return nil, errEngineSide
}

// setCommandCodeAuditStatusCmd is TPM2_SetCommandCodeAuditStatus, Part 3
// §21.2.
type setCommandCodeAuditStatusCmd struct {
	Auth      gt.UnmarshalledHandle `gotpm:"handle,auth"`
	AuditAlg  gt.TPMIAlgHash
	SetList   gt.TPMLCC
	ClearList gt.TPMLCC
}

func (setCommandCodeAuditStatusCmd) Command() gt.TPMCC { return gt.TPMCCSetCommandCodeAuditStatus }
func (setCommandCodeAuditStatusCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// pcrSetAuthPolicyCmd is TPM2_PCR_SetAuthPolicy, Part 3 §22.6.
type pcrSetAuthPolicyCmd struct {
	AuthHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	AuthPolicy gt.TPM2BDigest
	HashAlg    gt.TPMIAlgHash
	PCRNum     uint32
}

func (pcrSetAuthPolicyCmd) Command() gt.TPMCC { return gt.TPMCCPCRSetAuthPolicy }
func (pcrSetAuthPolicyCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// pcrSetAuthValueCmd is TPM2_PCR_SetAuthValue, Part 3 §22.7.
type pcrSetAuthValueCmd struct {
	PCRHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	Auth      gt.TPM2BDigest
}

func (pcrSetAuthValueCmd) Command() gt.TPMCC { return gt.TPMCCPCRSetAuthValue }
func (pcrSetAuthValueCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// eccParametersCmd is TPM2_ECC_Parameters, Part 3 §14.8.
type eccParametersCmd struct {
	CurveID gt.TPMECCCurve
}

func (eccParametersCmd) Command() gt.TPMCC { return gt.TPMCCECCParameters }
func (eccParametersCmd) Execute(transport.TPM, ...gt.Session) (*eccParametersResponse, error) {
	return nil, errEngineSide
}

type eccParametersResponse struct {
	Parameters algorithmDetailECC
}

// algorithmDetailECC is TPMS_ALGORITHM_DETAIL_ECC, Part 2 §11.2.5.2,
// which go-tpm v0.9.8 does not declare.
type algorithmDetailECC struct {
	CurveID               gt.TPMECCCurve
	KeySize               uint16
	KDF                   gt.TPMTKDFScheme
	Sign                  gt.TPMTECCScheme
	P, A, B, GX, GY, N, H gt.TPM2BECCParameter
}

// zgen2PhaseCmd: go-tpm has no ZGen_2Phase.
type zgen2PhaseCmd struct {
	KeyA     gt.UnmarshalledHandle `gotpm:"handle,auth"`
	InQsB    gt.TPM2BECCPoint
	InQeB    gt.TPM2BECCPoint
	InScheme gt.TPMAlgID
	Counter  uint16
}

// zgen2PhaseResponse is TPM2_ZGen_2Phase's response, Part 3 §14.7.
type zgen2PhaseResponse struct {
	OutZ1 gt.TPM2BECCPoint
	OutZ2 gt.TPM2BECCPoint
}

func (zgen2PhaseCmd) Command() gt.TPMCC { return gt.TPMCCZGen2Phase }
func (zgen2PhaseCmd) Execute(transport.TPM, ...gt.Session) (*zgen2PhaseResponse, error) {
	return nil, errEngineSide
}

// ecEphemeralCmd: go-tpm has no EC_Ephemeral.
type ecEphemeralCmd struct {
	CurveID gt.TPMECCCurve
}

// ecEphemeralResponse is TPM2_EC_Ephemeral's response, Part 3 §14.8.
type ecEphemeralResponse struct {
	Q       gt.TPM2BECCPoint
	Counter uint16
}

func (ecEphemeralCmd) Command() gt.TPMCC { return gt.TPMCCECEphemeral }
func (ecEphemeralCmd) Execute(transport.TPM, ...gt.Session) (*ecEphemeralResponse, error) {
	return nil, errEngineSide
}
