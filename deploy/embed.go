package deploy

import (
	"embed"
	"io/fs"
)

// chartFiles is the webhook chart, built into every binary that imports
// this package, so `bootstrap` needs no source tree.
//
//go:embed all:charts/linkerd-inject-policy
var chartFiles embed.FS

// ChartFS returns the files of the chart charts/linkerd-inject-policy, with
// paths relative to the chart's directory (Chart.yaml at the root).
func ChartFS() fs.FS {
	sub, err := fs.Sub(chartFiles, "charts/"+ChartName)
	if err != nil {
		// The path is a constant that go:embed already checked.
		panic(err)
	}
	return sub
}
