package tpm2

// The command table: every command this TPM implements, one row each,
// grouped by the chapters of TPM 2.0 Part 3 (rev. 1.59). A row names the
// handler (a method of *TPM whose arguments are go-tpm's command
// structure, or an engine-side one from engineside.go, and whose result
// is go-tpm's response structure) and says what the dispatcher must know
// beyond the structures: the authorization role of each auth handle
// (roles; USER when absent), whether the command may change durable
// state (writesNV, writesLazily), and, for commands on the hot path, a
// hand-written decoder or encoder of the same structures (fast.go).
//
// GetCapability(TPM_CAP_COMMANDS) is generated from this table.
var commandTable = table(
	// (startup.go rows)

	// (session.go rows)

	// (policy.go, import.go rows)

	// (create.go rows)

	// (secret.go, hash.go rows)

	// Part 3 §16: random number generator.
	cmd((*TPM).getRandom),
	cmd((*TPM).stirRandom),

	// (attest.go, sign.go, pcr.go rows)

	// (nv.go, admin.go rows)

	// (clock rows)

	// (capability.go rows)
)
