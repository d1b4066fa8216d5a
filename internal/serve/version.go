package serve

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// NewVersionCommand prints program, version and the Go runtime's platform.
func NewVersionCommand(program, version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s, %s/%s)\n", program, version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

// UsageError is a bad flag or argument: the process exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for an error a command returned: 2 for
// a UsageError, else 1.
func ExitCode(err error) int {
	if _, ok := err.(*UsageError); ok {
		return 2
	}
	return 1
}
