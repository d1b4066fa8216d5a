package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// Facts of the hand-written linkerd-config fixtures under testdata/.
const (
	facts220         = "linkerd-2.20.yaml"
	facts219NoNative = "linkerd-2.19-no-native-sidecar.yaml"
	facts214         = "linkerd-2.14.yaml"
	facts220NoToken  = "linkerd-2.20-no-token-projection.yaml"
)

// env reads a fixture's Linkerd facts and sets the Kubernetes version
// ("" leaves it unknown). An empty file name is no facts at all.
func env(t testing.TB, file, kube string) Environment {
	t.Helper()
	var e Environment
	if file != "" {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if e, err = LinkerdFactsFromFile(file, data); err != nil {
			t.Fatal(err)
		}
	}
	if kube != "" {
		v, err := ParseKubernetesVersion(kube)
		if err != nil {
			t.Fatal(err)
		}
		e.Kubernetes = v
	}
	return e
}

func TestFixturesHoldTheFactsTheirNamesSay(t *testing.T) {
	cases := []struct {
		file            string
		line            Version
		native, project Fact
	}{
		{facts220, Version{2, 20}, FactTrue, FactTrue},
		{facts219NoNative, Version{2, 19}, FactFalse, FactTrue},
		{facts214, Version{2, 14}, FactFalse, FactTrue},
		{facts220NoToken, Version{2, 20}, FactTrue, FactFalse},
	}
	for _, c := range cases {
		e := env(t, c.file, "")
		if e.Linkerd.Line != c.line || e.NativeSidecar != c.native || e.TokenProjection != c.project {
			t.Errorf("%s: %s", c.file, e.Summary())
		}
	}
}
