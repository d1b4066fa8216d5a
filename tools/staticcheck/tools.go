//go:build tools

// Package tools records the command this module exists to build.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
