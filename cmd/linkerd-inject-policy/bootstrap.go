package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(skeleton): replaced by the real implementation.
func newBootstrapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "bootstrap (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("bootstrap: not implemented yet") },
	}
}
