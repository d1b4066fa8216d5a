// Package deploy holds the Helm chart (charts/linkerd-inject-policy) and
// renders it with the Helm SDK, exactly as `helm template` does, so tests
// and the e2e suite can check and apply what users install.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ChartName is the chart's name and its directory under charts/.
const ChartName = "linkerd-inject-policy"

// CertManagerAPIVersions make `certs.mode: auto` see cert-manager, as
// `helm template --api-versions cert-manager.io/v1/Certificate` does.
var CertManagerAPIVersions = []string{"cert-manager.io/v1", "cert-manager.io/v1/Certificate", "cert-manager.io/v1/Issuer"}

// RenderOptions say how to render the chart.
type RenderOptions struct {
	// ChartDir is the chart directory (.../deploy/charts/linkerd-inject-policy).
	ChartDir string
	// ReleaseName and Namespace of the release; Namespace defaults to "default".
	ReleaseName string
	Namespace   string
	// Values override the chart's values.yaml (validated by values.schema.json).
	Values map[string]any
	// APIVersions the cluster serves besides the built-in ones, e.g.
	// CertManagerAPIVersions.
	APIVersions []string
}

// Render renders the chart like `helm template` (client-only capabilities)
// and returns its objects in Helm's install order.
func Render(o RenderOptions) ([]*unstructured.Unstructured, error) {
	if o.ChartDir == "" {
		return nil, errors.New("render chart: ChartDir is required")
	}
	if o.ReleaseName == "" {
		o.ReleaseName = ChartName
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	ch, err := loader.Load(o.ChartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", o.ChartDir, err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(append(chartutil.VersionSet{}, caps.APIVersions...), o.APIVersions...)
	vals, err := chartutil.ToRenderValues(ch, o.Values, chartutil.ReleaseOptions{
		Name: o.ReleaseName, Namespace: o.Namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, fmt.Errorf("chart %s values: %w", ch.Name(), err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", ch.Name(), err)
	}
	for name := range files {
		if !strings.HasSuffix(name, ".yaml") || strings.HasPrefix(filepath.Base(name), "_") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("chart %s manifests: %w", ch.Name(), err)
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("chart %s: unexpected hooks (%d)", ch.Name(), len(hooks))
	}
	var out []*unstructured.Unstructured
	for _, m := range manifests {
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(m.Content)), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("chart %s: %s: %w", ch.Name(), m.Name, err)
			}
			if len(obj) == 0 {
				continue
			}
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
	return out, nil
}
