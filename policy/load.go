package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// LoadConfigFile reads and loads a PolicyConfig file.
func LoadConfigFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	cfg, err := LoadConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// LoadConfig decodes a PolicyConfig strictly (unknown fields are errors),
// applies the defaults of every field it does not set and validates it.
// The error lists every problem found, one per line, each with its field
// path, such as `rules[2].match.kinds[0]: unknown kind "Deploymnet"`.
func LoadConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration: want apiVersion " + APIVersion + ", kind " + KindPolicyConfig)
		}
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("config: more than one YAML document; want exactly one PolicyConfig")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config: %w", err)
	}

	var errs fieldErrors
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	checkShape(root, reflect.TypeFor[Config](), "", &errs)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	cfg := &Config{}
	if err := root.Decode(cfg); err != nil {
		// checkShape accepts only what decodes; this is a safety net.
		return nil, fmt.Errorf("decode config: %w", err)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fieldErrors collects "path: problem" lines.
type fieldErrors []string

func (e *fieldErrors) add(path, format string, args ...any) {
	if path == "" {
		path = "(root)"
	}
	*e = append(*e, path+": "+fmt.Sprintf(format, args...))
}

func (e fieldErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return errors.New("invalid PolicyConfig:\n" + strings.Join(e, "\n"))
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkShape walks the YAML tree against the Go type it decodes into, so
// every unknown field and every wrongly typed value is reported with its
// path, not just the first one the decoder trips over.
func checkShape(n *yaml.Node, t reflect.Type, path string, errs *fieldErrors) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: the default applies
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			errs.add(path, "expected an object, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			p := joinPath(path, key)
			if seen[key] {
				errs.add(p, "duplicate field")
				continue
			}
			seen[key] = true
			ft, ok := fields[key]
			if !ok {
				errs.add(p, "unknown field%s", suggest(key, fields))
				continue
			}
			checkShape(val, ft, p, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			errs.add(path, "expected a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			errs.add(path, "expected a map, got %s", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := path + "[" + key + "]"
			if seen[key] {
				errs.add(p, "duplicate key")
				continue
			}
			seen[key] = true
			checkShape(n.Content[i+1], t.Elem(), p, errs)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			errs.add(path, "expected a string, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			errs.add(path, "expected true or false, got %s", describe(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			errs.add(path, "expected an integer, got %s", describe(n))
		}
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// yamlFields maps the YAML keys of struct t (with inlined structs) to types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known fields, the quickest fix for a typo.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	lower := strings.ToLower(key)
	for _, n := range names {
		if editDistance(strings.ToLower(n), lower) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func boolPtr(b bool) *bool { return &b }

// applyDefaults fills what the file left out. A list given explicitly,
// even empty, is kept: that is how a default list is cleared.
func (c *Config) applyDefaults() {
	d := DefaultConfig()
	if c.DefaultMode == "" {
		c.DefaultMode = d.DefaultMode
	}
	if c.ExcludedNamespaces == nil {
		c.ExcludedNamespaces = d.ExcludedNamespaces
	}
	b, db := &c.BuiltinRules, d.BuiltinRules
	for _, t := range []*Toggle{&b.Jobs.Toggle, &b.AdmissionJobs.Toggle, &b.Ingress.Toggle, &b.ECK.Toggle, &b.Unmeshable.Toggle} {
		if t.Enabled == nil {
			t.Enabled = boolPtr(true)
		}
	}
	if b.OpaquePorts.Enabled == nil {
		b.OpaquePorts.Enabled = boolPtr(true)
	}
	if b.Unmeshable.HostNetwork == nil {
		b.Unmeshable.HostNetwork = boolPtr(true)
	}
	if b.Jobs.Strategy == "" {
		b.Jobs.Strategy = db.Jobs.Strategy
	}
	if b.Jobs.NativeSidecarAnnotation == "" {
		b.Jobs.NativeSidecarAnnotation = db.Jobs.NativeSidecarAnnotation
	}
	if b.AdmissionJobs.JobNames == nil {
		b.AdmissionJobs.JobNames = db.AdmissionJobs.JobNames
	}
	if b.AdmissionJobs.Images == nil {
		b.AdmissionJobs.Images = db.AdmissionJobs.Images
	}
	if b.Ingress.Matchers == nil {
		b.Ingress.Matchers = db.Ingress.Matchers
	}
	if b.Ingress.SkipOutboundPorts == nil {
		b.Ingress.SkipOutboundPorts = db.Ingress.SkipOutboundPorts
	}
	if b.OpaquePorts.Ports == nil {
		b.OpaquePorts.Ports = db.OpaquePorts.Ports
	}
	if b.Unmeshable.Workloads == nil {
		b.Unmeshable.Workloads = db.Unmeshable.Workloads
	}
	if c.Rules == nil {
		c.Rules = []UserRule{}
	}
}

var (
	ruleNameRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	reasonRE     = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	qualifiedKey = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// Validate checks a decoded, defaulted Config and returns every problem
// with its field path, one per line.
func (c *Config) Validate() error {
	var errs fieldErrors
	if c.APIVersion != APIVersion {
		errs.add("apiVersion", "must be %q, got %q", APIVersion, c.APIVersion)
	}
	if c.Kind != KindPolicyConfig {
		errs.add("kind", "must be %q, got %q", KindPolicyConfig, c.Kind)
	}
	switch c.DefaultMode {
	case ModeEnforce, ModeAudit, ModeOff:
	default:
		errs.add("defaultMode", "unknown mode %q (want enforce, audit or off)", c.DefaultMode)
	}
	for i, ns := range c.ExcludedNamespaces {
		if ns == "" {
			errs.add(fmt.Sprintf("excludedNamespaces[%d]", i), "empty namespace name")
		}
	}
	b := c.BuiltinRules
	switch b.Jobs.Strategy {
	case JobsStrategyDisable, JobsStrategyNativeSidecar:
	default:
		errs.add("builtinRules.jobs.strategy", "unknown strategy %q (want %s or %s)", b.Jobs.Strategy, JobsStrategyDisable, JobsStrategyNativeSidecar)
	}
	checkKey(&errs, "builtinRules.jobs.nativeSidecarAnnotation", b.Jobs.NativeSidecarAnnotation)
	checkGlobs(&errs, "builtinRules.admissionJobs.jobNames", b.AdmissionJobs.JobNames)
	checkGlobs(&errs, "builtinRules.admissionJobs.images", b.AdmissionJobs.Images)
	for i, m := range b.Ingress.Matchers {
		p := fmt.Sprintf("builtinRules.ingress.matchers[%d]", i)
		if m.Image == "" && len(m.Labels) == 0 {
			errs.add(p, "a matcher needs an image or labels (an empty one would match every workload)")
		}
		for k := range m.Labels {
			checkKey(&errs, p+".labels["+k+"]", k)
		}
	}
	checkPorts(&errs, "builtinRules.ingress.skipOutboundPorts", b.Ingress.SkipOutboundPorts)
	checkPorts(&errs, "builtinRules.opaquePorts.ports", b.OpaquePorts.Ports)
	for i, w := range b.Unmeshable.Workloads {
		p := fmt.Sprintf("builtinRules.unmeshable.workloads[%d]", i)
		if len(w.Names) == 0 {
			errs.add(p+".names", "at least one name (glob) is required")
		}
		checkGlobs(&errs, p+".names", w.Names)
	}

	names := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			errs.add(p+".name", "required")
		case !ruleNameRE.MatchString(r.Name):
			errs.add(p+".name", "%q: use lowercase letters, digits and '-'", r.Name)
		case isBuiltinRule(r.Name):
			errs.add(p+".name", "%q is the name of a built-in rule", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				errs.add(p+".name", "%q already used by rules[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		if r.Reason != "" && !reasonRE.MatchString(r.Reason) {
			errs.add(p+".reason", "%q: must be snake_case", r.Reason)
		}
		switch r.Target {
		case "", TargetPodTemplate, TargetObject:
		default:
			errs.add(p+".target", "unknown target %q (want %s or %s)", r.Target, TargetPodTemplate, TargetObject)
		}
		for j, k := range r.Match.Kinds {
			if !knownKind(k) {
				errs.add(fmt.Sprintf("%s.match.kinds[%d]", p, j), "unknown kind %q (known: %s)", k, strings.Join(kindNames(), ", "))
			}
		}
		checkGlobs(&errs, p+".match.namespaces", r.Match.Namespaces)
		checkGlobs(&errs, p+".match.names", r.Match.Names)
		checkGlobs(&errs, p+".match.images", r.Match.Images)
		if s := r.Match.LabelSelector; s != nil {
			for k := range s.MatchLabels {
				checkKey(&errs, p+".match.labelSelector.matchLabels["+k+"]", k)
			}
			for j, e := range s.MatchExpressions {
				ep := fmt.Sprintf("%s.match.labelSelector.matchExpressions[%d]", p, j)
				checkKey(&errs, ep+".key", e.Key)
				switch e.Operator {
				case "In", "NotIn":
					if len(e.Values) == 0 {
						errs.add(ep+".values", "operator %s needs at least one value", e.Operator)
					}
				case "Exists", "DoesNotExist":
					if len(e.Values) > 0 {
						errs.add(ep+".values", "operator %s takes no values", e.Operator)
					}
				default:
					errs.add(ep+".operator", "unknown operator %q (want In, NotIn, Exists or DoesNotExist)", e.Operator)
				}
			}
		}
		if len(r.Actions.SetAnnotations) == 0 && len(r.Actions.RemoveAnnotations) == 0 {
			errs.add(p+".actions", "the rule does nothing: give setAnnotations or removeAnnotations")
		}
		keys := make([]string, 0, len(r.Actions.SetAnnotations))
		for k := range r.Actions.SetAnnotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			checkKey(&errs, p+".actions.setAnnotations["+k+"]", k)
			if k == AnnotationApplied {
				errs.add(p+".actions.setAnnotations["+k+"]", "the trace annotation is written by the engine")
			}
		}
		for j, k := range r.Actions.RemoveAnnotations {
			q := fmt.Sprintf("%s.actions.removeAnnotations[%d]", p, j)
			checkKey(&errs, q, k)
			if _, both := r.Actions.SetAnnotations[k]; both {
				errs.add(q, "%q is also in setAnnotations", k)
			}
		}
	}
	return errs.err()
}

func checkKey(errs *fieldErrors, path, key string) {
	if len(key) > 316 || !qualifiedKey.MatchString(key) {
		errs.add(path, "%q is not a valid annotation or label key", key)
	}
}

func checkGlobs(errs *fieldErrors, path string, globs []string) {
	for i, g := range globs {
		if g == "" {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "empty pattern")
		}
	}
}

func checkPorts(errs *fieldErrors, path string, ports []int) {
	for i, p := range ports {
		if p < 1 || p > 65535 {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "port %d out of range 1-65535", p)
		}
	}
}

func isBuiltinRule(name string) bool {
	switch name {
	case RuleJobs, RuleAdmissionJobs, RuleIngress, RuleOpaquePorts, RuleECK, RuleUnmeshable:
		return true
	}
	return false
}

// editDistance is the Levenshtein distance, to suggest the field a typo meant.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
