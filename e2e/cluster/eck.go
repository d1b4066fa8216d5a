package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ECKModule pins the Elastic Cloud on Kubernetes release whose CRDs the e2e
// tests and the demo install. The CRDs ship inside its Go module, so the Go
// module proxy is all we need (it is not a dependency of our go.mod).
const ECKModule = "github.com/elastic/cloud-on-k8s/v3@v3.5.0"

// ECKCRDsPath downloads ECKModule into the module cache (once) and returns
// the path of its all-crds.yaml.
func ECKCRDsPath(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", ECKModule)
	// Outside any module, so our go.mod is neither read nor changed.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", ECKModule, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w (is the Go module proxy reachable?)", ECKModule, err)
	}
	path := filepath.Join(info.Dir, "config", "crds", "v1", "all-crds.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("ECK CRDs: %w", err)
	}
	return path, nil
}

// InstallECKCRDs applies ECK's CRDs server-side (they are too large for the
// last-applied annotation of a client-side apply) and waits until the
// Elasticsearch and Kibana kinds are served.
func (c *Cluster) InstallECKCRDs(ctx context.Context) error {
	path, err := ECKCRDsPath(ctx)
	if err != nil {
		return err
	}
	if _, _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "--field-manager=lip-e2e", "-f", path); err != nil {
		return fmt.Errorf("install ECK CRDs: %w", err)
	}
	if _, _, err := c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/elasticsearches.elasticsearch.k8s.elastic.co", "crd/kibanas.kibana.k8s.elastic.co"); err != nil {
		return fmt.Errorf("wait for ECK CRDs: %w", err)
	}
	// kubectl caches discovery for minutes; drop it so the next command
	// knows the new kinds.
	if err := os.RemoveAll(filepath.Join(c.Dir, ".kube", "cache")); err != nil {
		return fmt.Errorf("reset kubectl discovery cache: %w", err)
	}
	return nil
}
