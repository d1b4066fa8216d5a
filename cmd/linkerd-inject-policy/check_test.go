package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// checkFixtures is the fixture directory relative to the repository root,
// where the tests run, so sources print the same on every machine.
const checkFixtures = "cmd/linkerd-inject-policy/testdata/check"

var update = flag.Bool("update", false, "rewrite the golden files of check's tests")

// checkRun runs `check` with args and stdin, as the binary would.
func checkRun(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	out, _, err := checkRunStderr(t, stdin, args...)
	return out, err
}

// checkRunStderr is checkRun that also returns what check wrote to stderr.
func checkRunStderr(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newCheckCmd()
	var out, errOut bytes.Buffer
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// tableRows returns the object rows of -o table output: after the facts
// line and the header, up to the blank line before the warnings.
func tableRows(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "Facts: ") || !strings.HasPrefix(lines[1], "SOURCE") {
		t.Fatalf("table does not start with the facts line and the header:\n%s", out)
	}
	var rows []string
	for _, l := range lines[2:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		rows = append(rows, l)
	}
	return rows
}

// repoRoot moves the test to the repository root so sources print as
// "examples/…", and returns the absolute testdata directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join("..", ".."))
	return td
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/linkerd-inject-policy -run %s -update to create it, then read it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("output differs from %s (rerun with -update if intended, and review the diff)\n--- got\n%s", path, got)
	}
}

// scenarios are the example directories (the config examples are not manifests).
func scenarios(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("examples")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "config" {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) < 11 {
		t.Fatalf("expected the 11 scenarios in examples/, found %v", dirs)
	}
	return dirs
}

func TestCheckExamplesMatchGoldenAndAreStable(t *testing.T) {
	td := repoRoot(t)
	for _, dir := range scenarios(t) {
		t.Run(dir, func(t *testing.T) {
			out, err := checkRun(t, "", "-f", filepath.Join("examples", dir))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(td, "golden", dir+".yaml"), out)
			// check on its own output is a no-op, byte for byte.
			again, err := checkRun(t, out, "-f", "-")
			if err != nil {
				t.Fatalf("check of its own output: %v", err)
			}
			if again != out {
				t.Errorf("check is not idempotent on %s:\n--- first\n%s\n--- second\n%s", dir, out, again)
			}
			// The output stays valid YAML objects.
			r := utilyaml.NewYAMLReader(bufioString(out))
			for {
				doc, err := r.Read()
				if err != nil {
					break
				}
				var v map[string]any
				if err := yaml.Unmarshal(doc, &v); err != nil {
					t.Errorf("output document does not parse: %v\n%s", err, doc)
				}
			}
		})
	}
}

func TestCheckTableHandlesEveryScenario(t *testing.T) {
	td := repoRoot(t)
	out, err := checkRun(t, "", "-f", "examples/", "-o", "table")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(td, "golden", "examples.table"), out)
	want := map[string][2]string{ // object → rule, reason
		"Job/db-migrate":                                      {"jobs", "job_never_completes"},
		"CronJob/nightly-backup":                              {"jobs", "job_never_completes"},
		"Job/kube-prometheus-stack-admission-create":          {"admission-jobs", "admission_job_never_completes"},
		"Job/kube-prometheus-stack-admission-patch":           {"admission-jobs", "admission_job_never_completes"},
		"Deployment/traefik":                                  {"ingress", "ingress_mode,ingress_skip_outbound"},
		"StatefulSet/mysql":                                   {"opaque-ports", "server_speaks_first"},
		"Service/mysql":                                       {"opaque-ports", "server_speaks_first"},
		"StatefulSet/postgresql":                              {"opaque-ports", "server_speaks_first"},
		"Service/postgresql":                                  {"opaque-ports", "server_speaks_first"},
		"Deployment/mail-postfix":                             {"opaque-ports", "server_speaks_first"},
		"Service/mail-postfix":                                {"opaque-ports", "server_speaks_first"},
		"Elasticsearch/efk":                                   {"eck", "eck_service_account_token"},
		"Kibana/efk":                                          {"eck", "eck_service_account_token"},
		"Pod/efk-es-default-0":                                {"eck,opaque-ports", "eck_service_account_token,server_speaks_first"},
		"Deployment/longhorn-system/longhorn-driver-deployer": {"unmeshable", "known_unmeshable"},
		"DaemonSet/kube-prometheus-stack-prometheus-node-exporter": {"unmeshable", "host_network"},
		"Deployment/web":  {"-", "-"},
		"Service/web":     {"-", "-"},
		"Service/traefik": {"-", "-"},
		"Job/report":      {"-", "user_override (jobs)"},
	}
	rows := map[string][2]string{}
	for _, line := range tableRows(t, out) {
		f := strings.Fields(line)
		if len(f) < 4 {
			t.Fatalf("short row %q", line)
		}
		rows[f[1]] = [2]string{f[2], strings.Join(f[3:], " ")}
	}
	for obj, w := range want {
		if got, ok := rows[obj]; !ok {
			t.Errorf("no row for %s", obj)
		} else if got != w {
			t.Errorf("%s: rules %q reasons %q, want %q %q", obj, got[0], got[1], w[0], w[1])
		}
	}
}

func TestCheckKeepsUnknownFieldsOrderAndComments(t *testing.T) {
	td := repoRoot(t)
	out, err := checkRun(t, "", "-f", filepath.Join(checkFixtures, "future-field.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(td, "golden", "future-field.yaml"), out)
	inOrder := []string{
		"# A Job from a future Kubernetes", "apiVersion: batch/v1", "kind: Job", "name: from-the-future", "# trailing comment",
		"zeta: last-but-listed-first", "alpha: first", "# the template keeps its comment",
		"futureField:", "mode: quantum", "replicasAcrossTime: 3", "restartPolicy: Never",
		"linkerd.io/inject: disabled", "backoffLimit: 0", "status:", "someStatusField: kept",
	}
	last := -1
	for _, s := range inOrder {
		i := strings.Index(out, s)
		if i < 0 {
			t.Errorf("output lost %q", s)
			continue
		}
		if i < last {
			t.Errorf("%q moved: field order not kept", s)
		}
		last = i
	}
}

func TestCheckPrintsUnchangedDocumentsByteForByte(t *testing.T) {
	repoRoot(t)
	in, err := os.ReadFile("examples/nginx/nginx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := checkRun(t, "", "-f", "examples/nginx/nginx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(in) {
		t.Errorf("nginx (no rule applies) was not printed as it came:\n--- in\n%s\n--- out\n%s", in, out)
	}
}

func TestCheckListsJSONAndStdin(t *testing.T) {
	td := repoRoot(t)
	tests := []struct {
		name   string
		args   []string
		stdin  string
		golden string
	}{
		{"a v1 List keeps its shape and each item is evaluated", []string{"-f", filepath.Join(checkFixtures, "list.yaml")}, "", "list.yaml"},
		{"a List as JSON", []string{"-f", filepath.Join(checkFixtures, "list.yaml"), "-o", "json"}, "", "list.json"},
		{"a JSON stream becomes YAML and unchanged JSON documents stay as they were", []string{"-f", filepath.Join(checkFixtures, "stream.json")}, "", "stream.yaml"},
		{"a JSON stream as JSON keeps key order", []string{"-f", filepath.Join(checkFixtures, "stream.json"), "-o", "json"}, "", "stream.json"},
		{"traefik as JSON", []string{"-f", "examples/traefik", "-o", "json"}, "", "traefik.json"},
		{"stdin", []string{"-f", "-"}, "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: piped\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: x}]\n", "stdin.yaml"},
		{"excluded namespaces and lowered modes are left alone", []string{"-f", filepath.Join(checkFixtures, "excluded.yaml"), "-o", "table"}, "", "excluded.table"},
		{"a pod made by an admission job", []string{"-f", filepath.Join(checkFixtures, "admission-job-pod.yaml")}, "", "admission-job-pod.yaml"},
		{"the native-sidecar strategy from a config file", []string{"-f", "examples/jobs", "--config", filepath.Join(checkFixtures, "native-sidecar.yaml")}, "", "jobs-native-sidecar.yaml"},
		{"an opt-in config still previews enforce mode", []string{"-f", "examples/jobs/job.yaml", "--config", "examples/config/opt-in.yaml", "-o", "table"}, "", "opt-in.table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := checkRun(t, tt.stdin, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(td, "golden", tt.golden), out)
			if strings.HasSuffix(tt.golden, ".json") {
				dec := json.NewDecoder(strings.NewReader(out))
				for dec.More() {
					var v map[string]any
					if err := dec.Decode(&v); err != nil {
						t.Fatalf("-o json is not a JSON stream: %v", err)
					}
				}
			}
		})
	}
}

func TestCheckRejectsBadInputWithFileAndDocument(t *testing.T) {
	td := repoRoot(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"broken YAML in the second document", []string{"-f", write("broken.yaml", good+"---\nkind: Job\n  bad: indent\n")}, "broken.yaml: document 2: invalid YAML"},
		{"a document without kind", []string{"-f", write("nokind.yaml", good+"---\n"+good+"---\napiVersion: v1\nmetadata: {name: x}\n")}, "nokind.yaml: document 3: not a Kubernetes object: kind is missing"},
		{"a document that is a plain string", []string{"-f", write("scalar.yaml", "just text\n")}, "scalar.yaml: document 1: not a Kubernetes object: expected a mapping, got a string"},
		{"a List item that is not an object", []string{"-f", write("list.yaml", "apiVersion: v1\nkind: List\nitems: [3]\n")}, "list.yaml: document 1: items[0]: not a Kubernetes object"},
		{"broken JSON", []string{"-f", write("bad.json", `{"apiVersion": "v1", "kind": }`)}, "bad.json: document 1: invalid JSON"},
		{"annotations the policy cannot write into", []string{"-f", write("ann.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    metadata: {annotations: oops}\n    spec: {containers: [{name: c, image: x}]}\n")}, "ann.yaml: document 1: evaluate Job j: spec.template.metadata.annotations: expected an object, got a string"},
		{"duplicate keys", []string{"-f", write("dup.yaml", "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n")}, `dup.yaml: document 1: line 3: duplicate key "kind"`},
		{"a missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, "nope.yaml: no such file"},
		{"an unknown output format", []string{"-f", "examples/jobs", "-o", "wide"}, `-o "wide": must be yaml, json or table`},
		{"no input at all", nil, "no input"},
		{"an invalid config", []string{"-f", "examples/jobs", "--config", write("cfg.yaml", "apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\nrules:\n- name: r\n  match: {kinds: [Deploymnet]}\n  actions: {setAnnotations: {a: b}}\n")}, `rules[0].match.kinds[0]: unknown kind "Deploymnet"`},
	}
	_ = td
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := checkRun(t, "", tt.args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed output despite bad input:\n%s", out)
			}
		})
	}
}

func TestCheckReportsEveryBadDocument(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "two.yaml")
	if err := os.WriteFile(p, []byte("a: [\n---\napiVersion: v1\nkind: ConfigMap\n---\n- 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := checkRun(t, "", "-f", p)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "document 1:") || !strings.Contains(lines[1], "document 3:") {
		t.Errorf("want one line per bad document (1 and 3), got:\n%s", err)
	}
}

func TestCheckDirectoriesAreReadRecursivelyInSortedOrder(t *testing.T) {
	dir := t.TempDir()
	for name, kind := range map[string]string{"b.yaml": "B", "a/z.yml": "AZ", "a/a.json": "AA", "c.txt": "ignored", "0.YAML": "Zero"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + strings.ToLower(kind) + "}\n"
		if strings.HasSuffix(name, ".json") {
			content = `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aa"}}`
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := checkRun(t, "", "-f", dir, "-o", "table")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range tableRows(t, out) {
		names = append(names, strings.Fields(line)[1])
	}
	if got := strings.Join(names, " "); got != "ConfigMap/zero ConfigMap/aa ConfigMap/az ConfigMap/b" {
		t.Errorf("order %s", got)
	}
}

// TestCheckOutputIsAcceptedByARealAPIServer pipes check's output for every
// scenario to `kubectl apply --dry-run=server` against a real
// kube-apiserver (with ECK's CRDs), whose strict field validation rejects
// anything a Kubernetes v1.37 object may not contain.
func TestCheckOutputIsAcceptedByARealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real control plane")
	}
	repoRoot(t)
	c := cluster.StartForTest(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.InstallECKCRDs(ctx); err != nil {
		t.Fatalf("install ECK CRDs: %v", err)
	}
	if err := c.CreateNamespace(ctx, "check", nil); err != nil {
		t.Fatal(err)
	}
	for _, dir := range scenarios(t) {
		t.Run(dir, func(t *testing.T) {
			out, err := checkRun(t, "", "-f", filepath.Join("examples", dir))
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"apply", "--dry-run=server", "--validate=strict", "-f", "-"}
			if dir != "longhorn" {
				args = append(args, "-n", "check")
			} else {
				// The Namespace must exist for a server-side dry run of the
				// objects in it; create it for real.
				if _, stderr, err := c.Kubectl(ctx, nil, "apply", "-f", "examples/longhorn/00-namespace.yaml"); err != nil {
					t.Fatalf("create longhorn-system: %v\n%s", err, stderr)
				}
			}
			stdout, stderr, err := c.Kubectl(ctx, strings.NewReader(out), args...)
			if err != nil {
				t.Fatalf("kubectl rejected check's output: %v\n%s\n%s", err, stderr, out)
			}
			if strings.Contains(string(stderr), "Warning") {
				t.Errorf("kubectl warned: %s", stderr)
			}
			t.Logf("%s", stdout)
		})
	}
	// The validation is real: the field no Kubernetes has, which check
	// kept, is what the apiserver refuses.
	t.Run("the future field check keeps is refused by the server", func(t *testing.T) {
		out, err := checkRun(t, "", "-f", filepath.Join(checkFixtures, "future-field.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_, stderr, err := c.Kubectl(ctx, strings.NewReader(out), "apply", "--dry-run=server", "--validate=strict", "-n", "check", "-f", "-")
		if err == nil || !strings.Contains(string(stderr), "futureField") {
			t.Errorf("want the apiserver to reject spec.template.spec.futureField, got err %v: %s", err, stderr)
		}
	})
	// --kubeconfig reads the facts from the cluster itself: the
	// apiserver's version, and ConfigMap linkerd-config once it exists.
	t.Run("check reads the facts from a live cluster with --kubeconfig", func(t *testing.T) {
		table := func(extra ...string) (string, string) {
			t.Helper()
			args := append([]string{"-f", "examples/jobs/job.yaml", "-o", "table", "--kubeconfig", c.KubeconfigPath}, extra...)
			out, stderr, err := checkRunStderr(t, "", args...)
			if err != nil {
				t.Fatalf("check %v: %v", args, err)
			}
			return strings.SplitN(out, "\n", 2)[0], stderr
		}
		facts, stderr := table()
		if !strings.HasPrefix(facts, "Facts: Linkerd version unknown; Kubernetes 1.") {
			t.Errorf("without linkerd-config: facts line %q", facts)
		}
		if !strings.Contains(stderr, "note: no ConfigMap linkerd/linkerd-config") {
			t.Errorf("without linkerd-config: stderr %q lacks the note", stderr)
		}
		if err := c.CreateNamespace(ctx, "linkerd", nil); err != nil {
			t.Fatal(err)
		}
		if _, stderr, err := c.Kubectl(ctx, nil, "apply", "-f", "examples/config/linkerd-config-2.20.yaml"); err != nil {
			t.Fatalf("apply linkerd-config: %v\n%s", err, stderr)
		}
		facts, stderr = table()
		if !strings.HasPrefix(facts, "Facts: Linkerd edge-26.8.3 (2.20 line), proxy.nativeSidecar=true") || !strings.Contains(facts, "(Linkerd facts from ConfigMap linkerd/linkerd-config)") {
			t.Errorf("with linkerd-config: facts line %q", facts)
		}
		if stderr != "" {
			t.Errorf("with linkerd-config: stderr %q", stderr)
		}
		facts, _ = table("--linkerd-config", "examples/config/linkerd-config-2.14.yaml")
		if !strings.Contains(facts, "stable-2.14.10") || !strings.Contains(facts, "Kubernetes 1.") {
			t.Errorf("--linkerd-config replaces the cluster's Linkerd facts, not its version: %q", facts)
		}
		facts, stderr = table("--linkerd-namespace", "mesh")
		if !strings.HasPrefix(facts, "Facts: Linkerd version unknown") || !strings.Contains(stderr, "no ConfigMap mesh/linkerd-config") {
			t.Errorf("--linkerd-namespace mesh: facts %q, stderr %q", facts, stderr)
		}
	})
}

// FuzzCheck feeds arbitrary input to check: it must either fail with exit
// status 2 or print output that check leaves as it is.
func FuzzCheck(f *testing.F) {
	examples, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*.yaml"))
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "check", "*"))
	for _, p := range append(examples, fixtures...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec: {hostNetwork: true}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		err := runCheck(context.Background(), bytes.NewReader(data), &out, io.Discard, &checkFlags{files: []string{"-"}, output: "yaml", linkerdNamespace: "linkerd"})
		if err != nil {
			if exitCode(err) != 2 {
				t.Fatalf("exit status %d for bad input, want 2: %v", exitCode(err), err)
			}
			return
		}
		var again bytes.Buffer
		if err := runCheck(context.Background(), bytes.NewReader(out.Bytes()), &again, io.Discard, &checkFlags{files: []string{"-"}, output: "yaml", linkerdNamespace: "linkerd"}); err != nil {
			t.Fatalf("check rejects its own output: %v\n%s", err, out.Bytes())
		}
		if !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatalf("check is not idempotent:\n--- first\n%s\n--- second\n%s", out.Bytes(), again.Bytes())
		}
	})
}
