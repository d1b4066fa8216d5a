package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestExampleConfigSpellsOutTheDefaults(t *testing.T) {
	cfg, err := LoadConfigFile(filepath.Join("..", "examples", "config", "policy-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("examples/config/policy-config.yaml differs from DefaultConfig():\n got %+v\nwant %+v", cfg, DefaultConfig())
	}
}

func TestOptInExampleOnlyChangesTheDefaultMode(t *testing.T) {
	cfg, err := LoadConfigFile(filepath.Join("..", "examples", "config", "opt-in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.DefaultMode = ModeOff
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("opt-in.yaml: got %+v, want the defaults with defaultMode off", cfg)
	}
}

const header = "apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\n"

func TestLoadConfigDefaultsAndOverrides(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"a minimal file gets every default", header, func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c, DefaultConfig()) {
				t.Errorf("got %+v", c)
			}
		}},
		{"an unquoted off is the off mode, not false", header + "defaultMode: off\n", func(t *testing.T, c *Config) {
			if c.DefaultMode != ModeOff {
				t.Errorf("defaultMode %q", c.DefaultMode)
			}
		}},
		{"an explicitly empty list clears the default", header + "excludedNamespaces: []\nbuiltinRules:\n  unmeshable:\n    workloads: []\n", func(t *testing.T, c *Config) {
			if len(c.ExcludedNamespaces) != 0 || len(c.BuiltinRules.Unmeshable.Workloads) != 0 {
				t.Errorf("lists not cleared: %v %v", c.ExcludedNamespaces, c.BuiltinRules.Unmeshable.Workloads)
			}
		}},
		{"a rule turned off stays off and the others stay on", header + "builtinRules:\n  jobs:\n    enabled: false\n", func(t *testing.T, c *Config) {
			if c.BuiltinRules.Jobs.On() || !c.BuiltinRules.Ingress.On() || !c.BuiltinRules.OpaquePorts.On() {
				t.Errorf("jobs %v ingress %v", c.BuiltinRules.Jobs.On(), c.BuiltinRules.Ingress.On())
			}
		}},
		{"a user rule is decoded", header + `rules:
  - name: redis
    match:
      kinds: [Deployment]
      labelSelector:
        matchExpressions: [{key: app, operator: In, values: [redis]}]
    actions:
      setAnnotations: {config.linkerd.io/opaque-ports: "6379"}
`, func(t *testing.T, c *Config) {
			if len(c.Rules) != 1 || c.Rules[0].Actions.SetAnnotations["config.linkerd.io/opaque-ports"] != "6379" || c.Rules[0].Match.LabelSelector.MatchExpressions[0].Values[0] != "redis" {
				t.Errorf("rules %+v", c.Rules)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigReportsEveryProblemWithItsPath(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // lines the error must contain, in this order
	}{
		{"a misspelt kind in a user rule names its path", header + `rules:
  - name: a
    match: {kinds: [Deployment]}
    actions: {setAnnotations: {x: y}}
  - name: b
    match: {kinds: [Job]}
    actions: {setAnnotations: {x: y}}
  - name: c
    match: {kinds: [Deploymnet, Pod]}
    actions: {setAnnotations: {x: y}}
`, []string{`rules[2].match.kinds[0]: unknown kind "Deploymnet"`}},
		{"unknown fields are all reported, not only the first", header + "defaultMod: enforce\nbuiltinRules:\n  jobs:\n    stratgy: disable\n  opaquePort: {}\n", []string{
			`defaultMod: unknown field`, `builtinRules.jobs.stratgy: unknown field`, `builtinRules.opaquePort: unknown field (did you mean "opaquePorts"?)`}},
		{"wrong types are reported with their path", header + "excludedNamespaces: kube-system\nbuiltinRules:\n  opaquePorts:\n    ports: [3306, mysql]\n  eck:\n    enabled: yes-please\n", []string{
			`excludedNamespaces: expected a list, got "kube-system"`, `builtinRules.opaquePorts.ports[1]: expected an integer, got "mysql"`, `builtinRules.eck.enabled: expected true or false, got "yes-please"`}},
		{"invalid values are all reported", header + `defaultMode: sometimes
builtinRules:
  jobs: {strategy: linkerd-await}
  opaquePorts: {ports: [0, 70000]}
  ingress: {matchers: [{}]}
rules:
  - name: Jobs!
    actions: {}
  - name: jobs
    reason: Bad Reason
    target: somewhere
    match: {labelSelector: {matchExpressions: [{key: app, operator: Near}]}}
    actions: {setAnnotations: {"linkerd-inject-policy.io/applied": x}, removeAnnotations: ["bad key!"]}
`, []string{
			`defaultMode: unknown mode "sometimes"`,
			`builtinRules.jobs.strategy: unknown strategy "linkerd-await"`,
			`builtinRules.ingress.matchers[0]: a matcher needs an image or labels`,
			`builtinRules.opaquePorts.ports[0]: port 0 out of range`,
			`builtinRules.opaquePorts.ports[1]: port 70000 out of range`,
			`rules[0].name: "Jobs!": use lowercase letters`,
			`rules[0].actions: the rule does nothing`,
			`rules[1].name: "jobs" is the name of a built-in rule`,
			`rules[1].reason: "Bad Reason": must be snake_case`,
			`rules[1].target: unknown target "somewhere"`,
			`rules[1].match.labelSelector.matchExpressions[0].operator: unknown operator "Near"`,
			`rules[1].actions.setAnnotations[linkerd-inject-policy.io/applied]: the trace annotation is written by the engine`,
			`rules[1].actions.removeAnnotations[0]: "bad key!" is not a valid annotation or label key`,
		}},
		{"the new rule fields are validated with their paths", header + `builtinRules:
  jobs: {nativeSidecarAnnotation: "not a key!"}
  admissionJobs: {strategy: native-sidecar}
  opaquePorts: {portNames: [mysql, "my sql", ""], images: [""]}
  unmeshable:
    workloads:
      - {namespace: x}
      - {labels: {app: "bad value!"}}
rules:
  - name: sel
    match: {labelSelector: {matchLabels: {app: "a b"}}}
    actions: {setAnnotations: {x: y}}
`, []string{
			`builtinRules.jobs.nativeSidecarAnnotation: "not a key!" is not a valid annotation or label key`,
			`builtinRules.admissionJobs.strategy: unknown strategy "native-sidecar" (want auto or disable)`,
			`builtinRules.opaquePorts.portNames[1]: "my sql" is not a port name`,
			`builtinRules.opaquePorts.portNames[2]: "" is not a port name`,
			`builtinRules.opaquePorts.images[0]: empty pattern`,
			`builtinRules.unmeshable.workloads[0]: give names, images or labels`,
			`builtinRules.unmeshable.workloads[1].labels[app]: "bad value!" is not a label value`,
			`rules[0].match.labelSelector.matchLabels[app]: "a b" is not a label value`,
		}},
		{"duplicate user rule names are rejected", header + "rules:\n- {name: a, actions: {setAnnotations: {x: y}}}\n- {name: a, actions: {setAnnotations: {x: y}}}\n", []string{`rules[1].name: "a" already used by rules[0]`}},
		{"apiVersion and kind are required", "defaultMode: audit\n", []string{`apiVersion: must be "linkerd-inject-policy.io/v1alpha1", got ""`, `kind: must be "PolicyConfig", got ""`}},
		{"an empty file is an error", "", []string{"empty configuration"}},
		{"two documents are an error", header + "---\n" + header, []string{"more than one YAML document"}},
		{"broken YAML is an error", header + "rules: [\n", []string{"parse config"}},
		{"a top-level list is not a config", "- a\n- b\n", []string{"(root): expected an object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, got %+v", c)
			}
			msg := err.Error()
			last := -1
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Errorf("error lacks %q:\n%s", w, msg)
					continue
				}
				if i < last {
					t.Errorf("%q out of order in:\n%s", w, msg)
				}
				last = i
			}
		})
	}
}

func TestLoadConfigFileNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(header+"bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfigFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus: unknown field") {
		t.Errorf("error %v should name %s and the field", err, p)
	}
	if _, err := LoadConfigFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestIsExcluded(t *testing.T) {
	c := DefaultConfig()
	for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", "linkerd", "linkerd-viz", "cert-manager", "linkerd-inject-policy"} {
		if !c.IsExcluded(ns) {
			t.Errorf("%s should be excluded by default", ns)
		}
	}
	if c.IsExcluded("default") || c.IsExcluded("kube-systemx") {
		t.Error("only exact names are excluded")
	}
	var nilCfg *Config
	if nilCfg.IsExcluded("kube-system") {
		t.Error("nil config excludes nothing")
	}
}

func TestGlobsAndImages(t *testing.T) {
	tests := []struct {
		name           string
		pattern, value string
		glob, image    bool
	}{
		{"star matches a suffix", "*-admission-create", "kube-prometheus-stack-admission-create", true, true},
		{"star does not match a longer name", "*-admission-create", "x-admission-create-2", false, false},
		{"question mark is one character", "csi-?", "csi-a", true, true},
		{"bare name matches the repository's last element", "traefik", "docker.io/traefik:v3.3.6", false, true},
		{"bare name ignores tag and digest", "kube-webhook-certgen", "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.2@sha256:abc", false, true},
		{"bare name is not a substring match", "traefik", "traefik/whoami:v1", false, false},
		{"a pattern with a slash matches the whole repository", "registry.k8s.io/ingress-nginx/*", "registry.k8s.io/ingress-nginx/controller:v1", true, true},
		{"a registry port is not a tag", "registry:5000/traefik", "registry:5000/traefik", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := globMatch(tt.pattern, tt.value); got != tt.glob {
				t.Errorf("globMatch(%q, %q) = %v", tt.pattern, tt.value, got)
			}
			if got := MatchImage(tt.pattern, tt.value); got != tt.image {
				t.Errorf("MatchImage(%q, %q) = %v", tt.pattern, tt.value, got)
			}
		})
	}
}
