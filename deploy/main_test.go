package deploy_test

import (
	"os"
	"testing"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// TestMain runs the tests in the e2e harness's private network namespace
// (docs/testing.md).
func TestMain(m *testing.M) {
	cluster.Isolate(certManagerModule, promOperatorModule)
	os.Exit(m.Run())
}
