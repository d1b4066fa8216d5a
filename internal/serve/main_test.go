package serve

import (
	"os"
	"testing"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// TestMain runs the tests in the e2e harness's private network namespace
// (docs/testing.md), as every package whose tests open ports does.
func TestMain(m *testing.M) {
	cluster.Isolate()
	os.Exit(m.Run())
}
