package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(skeleton): replaced by the real implementation.
func newCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "check (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("check: not implemented yet") },
	}
}
