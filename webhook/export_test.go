package webhook

// The external tests (package webhook_test) poll and pick ports the same way
// as the internal ones; these expose the internal helpers to them.
var (
	Eventually = eventually
	FreePort   = freePort
)
