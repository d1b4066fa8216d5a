// Command linkerd-inject-policy applies Linkerd injection policy to
// Kubernetes workloads: as a mutating admission webhook (serve), offline on
// manifests (check), and installs Linkerd itself (bootstrap).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/internal/serve"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/internal/serve/reports"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		// Input errors (exit 2) already read "file: document N: reason", the
		// contract scripts parse; everything else gets the program's name.
		if exitCode(err) == 2 {
			fmt.Fprintln(os.Stderr, err)
		} else {
			fmt.Fprintln(os.Stderr, "linkerd-inject-policy:", err)
		}
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "linkerd-inject-policy",
		Short:         "Apply Linkerd injection policy to Kubernetes workloads",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serve.NewCommand(version, reports.Start), newCheckCmd(), newBootstrapCmd(), newDoctorCmd(), serve.NewVersionCommand("linkerd-inject-policy", version))
	return root
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return serve.ExitCode(err)
}
