package webhook

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

func TestMain(m *testing.M) {
	cluster.Isolate()
	// controller-runtime logs through a package-level logger and complains
	// (with a stack trace) when nobody sets it.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// testLogger sends a component's log lines to the test's log.
func testLogger(t testing.TB) logr.Logger {
	return funcr.New(func(prefix, args string) { t.Log(prefix, args) }, funcr.Options{})
}
