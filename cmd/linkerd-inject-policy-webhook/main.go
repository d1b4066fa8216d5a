// Command linkerd-inject-policy-webhook is the admission webhook alone: the
// `serve` and `version` commands of linkerd-inject-policy, with the same
// flags, in a binary that links neither the Helm SDK nor anything else only
// bootstrap, check or doctor need. The container image ships it.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/internal/serve"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const program = "linkerd-inject-policy-webhook"

func main() {
	// Nothing reads a heap profile from this binary (it serves no pprof):
	// sampling allocations would only cost the profile's buckets (over a
	// MiB under load) and a stack walk per sample, whose unwinding tables
	// are then resident too.
	runtime.MemProfileRate = 0
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, program+":", err)
		os.Exit(serve.ExitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           program,
		Short:         "Run the linkerd-inject-policy mutating admission webhook",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serve.NewCommand(version, nil), serve.NewVersionCommand(program, version))
	return root
}
