package cluster

import (
	"context"
	"testing"
	"time"
)

// StartForTest starts a cluster for t and stops it on cleanup. In -short mode
// the test is skipped (e2e needs the control-plane binaries and a few
// seconds); a start-up failure fails the test with what to do about it.
func StartForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: needs a real control plane; skipped in -short mode")
	}
	if opts.Log == nil {
		opts.Log = testWriter{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start the e2e control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop the e2e control plane: %v", err)
		}
	})
	return c
}

// testWriter sends harness progress to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return p
}
