package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Linkerd configurations of examples/config, one per line of Linkerd
// whose behaviour the rules depend on.
const (
	linkerd220             = "examples/config/linkerd-config-2.20.yaml"
	linkerd220NoProjection = "examples/config/linkerd-config-2.20-no-token-projection.yaml"
	linkerd219             = "cmd/linkerd-inject-policy/testdata/check/linkerd-values-2.19.yaml"
	linkerd214             = "examples/config/linkerd-config-2.14.yaml"
)

func TestCheckDecidesByTheInstalledLinkerd(t *testing.T) {
	td := repoRoot(t)
	tests := []struct {
		name   string
		args   []string
		golden string
		want   []string // in the output
		not    []string // not in the output
	}{
		{
			name:   "with a 2.20-style config a plain Job keeps its native-sidecar proxy",
			args:   []string{"-f", "examples/jobs", "--linkerd-config", linkerd220},
			golden: "jobs-linkerd-2.20.yaml",
			not:    []string{"linkerd.io/inject: disabled", "proxy-enable-native-sidecar"},
		},
		{
			name:   "with a 2.19-style config and Kubernetes 1.31 a plain Job gets the beta native-sidecar annotation",
			args:   []string{"-f", "examples/jobs", "--linkerd-config", linkerd219, "--kube-version", "v1.31"},
			golden: "jobs-linkerd-2.19.yaml",
			want:   []string{`config.beta.linkerd.io/proxy-enable-native-sidecar: "true"`},
			not:    []string{"linkerd.io/inject: disabled", "config.linkerd.io/proxy-enable-native-sidecar", "config.alpha.linkerd.io/"},
		},
		{
			name:   "with a 2.14-style config a plain Job is disabled as today",
			args:   []string{"-f", "examples/jobs", "--linkerd-config", linkerd214, "--kube-version", "v1.31"},
			golden: "jobs-linkerd-2.14.yaml",
			want:   []string{"linkerd.io/inject: disabled"},
			not:    []string{"proxy-enable-native-sidecar"},
		},
		{
			name:   "with projected tokens ECK is left alone",
			args:   []string{"-f", "examples/eck", "--linkerd-config", linkerd220},
			golden: "eck-linkerd-2.20.yaml",
			not:    []string{"automountServiceAccountToken: true"},
		},
		{
			name:   "without projected tokens ECK gets the token as today",
			args:   []string{"-f", "examples/eck", "--linkerd-config", linkerd220NoProjection},
			golden: "eck-linkerd-2.20-no-token-projection.yaml",
			want:   []string{"automountServiceAccountToken: true"},
		},
		{
			name:   "the table states the 2.20 facts and the no-op reasons",
			args:   []string{"-f", "examples/", "--linkerd-config", linkerd220, "-o", "table"},
			golden: "examples-linkerd-2.20.table",
			want:   []string{"Facts: Linkerd edge-26.8.3 (2.20 line)", "native_sidecar_completes", "token_projected"},
		},
		{
			name:   "the table states the 2.19 facts",
			args:   []string{"-f", "examples/", "--linkerd-config", linkerd219, "--kube-version", "v1.31", "-o", "table"},
			golden: "examples-linkerd-2.19.table",
			want:   []string{"Facts: Linkerd edge-25.11.3 (2.19 line)", "Kubernetes 1.31"},
		},
		{
			name:   "the table states the 2.14 facts",
			args:   []string{"-f", "examples/", "--linkerd-config", linkerd214, "-o", "table"},
			golden: "examples-linkerd-2.14.table",
			want:   []string{"Facts: Linkerd stable-2.14.10 (2.14 line)", "job_never_completes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := checkRun(t, "", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(td, "golden", tt.golden), out)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q", n)
				}
			}
		})
	}
}

func TestCheckMakesMySQLOnANamedPortOpaque(t *testing.T) {
	repoRoot(t)
	out, err := checkRun(t, "", "-f", "examples/mysql-4406", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	// Both the StatefulSet's template and the Service get 4406.
	if n := strings.Count(out, `"config.linkerd.io/opaque-ports": "4406"`); n != 2 {
		t.Errorf("opaque-ports 4406 written %d times, want on the template and the Service:\n%s", n, out)
	}
}

// annotationMistakes, from the repository root, is the manifest the e2e
// suite applies to see kubectl print the same warnings.
const annotationMistakes = "e2e/testdata/annotation-mistakes.yaml"

func TestCheckWarnsAboutLinkerdAnnotations(t *testing.T) {
	repoRoot(t)
	b, err := os.ReadFile(annotationMistakes)
	if err != nil {
		t.Fatal(err)
	}
	in := string(b)
	stdout, stderr, err := checkRunStderr(t, in, "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != in {
		t.Errorf("the lint rewrote the input:\n%s", stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var misplaced, invalid bool
	for _, l := range lines {
		misplaced = misplaced || strings.HasPrefix(l, "warning: <stdin>#1: Deployment/web: ") && strings.Contains(l, "linkerd.io/inject")
		invalid = invalid || strings.HasPrefix(l, "warning: <stdin>#2: Deployment/typo: ") && strings.Contains(l, `"enable"`)
	}
	if !misplaced || !invalid {
		t.Errorf("stderr lacks the misplaced (document 1) or invalid (document 2) warning:\n%s", stderr)
	}
	table, _, err := checkRunStderr(t, in, "-f", "-", "-o", "table")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WARNING", "misplaced_annotation", "invalid_annotation"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestCheckRejectsBadFactFlags(t *testing.T) {
	repoRoot(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a kube version that is no version", []string{"--kube-version", "latest"}, `--kube-version: kubernetes version "latest"`},
		{"a Kubernetes 2", []string{"--kube-version", "v2.1"}, "want v1.MINOR"},
		{"a missing linkerd-config file", []string{"--linkerd-config", filepath.Join(dir, "nope.yaml")}, "--linkerd-config: open "},
		{"an empty linkerd-config file", []string{"--linkerd-config", write("empty.yaml", "")}, "empty: want ConfigMap linkerd-config"},
		{"another ConfigMap", []string{"--linkerd-config", write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {a: b}\n")}, `has no data key "values"`},
		{"a Secret", []string{"--linkerd-config", write("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")}, "kind Secret: want ConfigMap linkerd-config"},
		{"values that are not YAML", []string{"--linkerd-config", write("bad.yaml", "proxy: [\n")}, "not YAML"},
		{"a missing kubeconfig", []string{"--kubeconfig", filepath.Join(dir, "nokube")}, "--kubeconfig/--context: "},
		{"a context the kubeconfig lacks", []string{"--kubeconfig", write("kubeconfig", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"), "--context", "nowhere"}, `--kubeconfig/--context: context "nowhere"`},
		{"a Linkerd namespace without a cluster", []string{"--linkerd-namespace", "mesh"}, "--linkerd-namespace: only read from a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-f", "examples/jobs"}, tt.args...)
			out, err := checkRun(t, "", args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tt.want)
			}
			if out != "" {
				t.Errorf("printed output despite the bad flag:\n%s", out)
			}
		})
	}
}

func TestCheckSaysWhenTheClusterCannotBeRead(t *testing.T) {
	repoRoot(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A loopback port nothing listens on: the connection is refused at once.
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := checkRun(t, "", "-f", "examples/jobs", "--kubeconfig", kubeconfig)
	if err == nil {
		t.Fatalf("no error; output:\n%s", out)
	}
	if code := exitCode(err); code != 1 {
		t.Errorf("exit code %d, want 1 (the input is fine, the cluster is not there)", code)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "read the facts from https://127.0.0.1:1: ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q, want one line naming the cluster", msg)
	}
	if out != "" {
		t.Errorf("printed output:\n%s", out)
	}
}
