package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(skeleton): replaced by the real implementation.
func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "serve (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("serve: not implemented yet") },
	}
}
