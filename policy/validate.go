package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// reasonRE: reason codes are snake_case. (Rule names, keys, label values
// and port names use apimachinery's validators.)
var reasonRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

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
	case JobsStrategyAuto, JobsStrategyDisable, JobsStrategyNativeSidecar:
	default:
		errs.add("builtinRules.jobs.strategy", "unknown strategy %q (want %s, %s or %s)", b.Jobs.Strategy, JobsStrategyAuto, JobsStrategyDisable, JobsStrategyNativeSidecar)
	}
	if b.Jobs.NativeSidecarAnnotation != "" {
		checkKey(&errs, "builtinRules.jobs.nativeSidecarAnnotation", b.Jobs.NativeSidecarAnnotation)
	}
	checkGlobs(&errs, "builtinRules.admissionJobs.jobNames", b.AdmissionJobs.JobNames)
	checkGlobs(&errs, "builtinRules.admissionJobs.images", b.AdmissionJobs.Images)
	switch b.AdmissionJobs.Strategy {
	case AdmissionJobsStrategyAuto, JobsStrategyDisable:
	default:
		errs.add("builtinRules.admissionJobs.strategy", "unknown strategy %q (want %s or %s)", b.AdmissionJobs.Strategy, AdmissionJobsStrategyAuto, JobsStrategyDisable)
	}
	for i, m := range b.Ingress.Matchers {
		p := fmt.Sprintf("builtinRules.ingress.matchers[%d]", i)
		if m.Image == "" && len(m.Labels) == 0 {
			errs.add(p, "a matcher needs an image or labels (an empty one would match every workload)")
		}
		checkLabels(&errs, p+".labels", m.Labels)
	}
	checkPorts(&errs, "builtinRules.ingress.skipOutboundPorts", b.Ingress.SkipOutboundPorts)
	checkPorts(&errs, "builtinRules.opaquePorts.ports", b.OpaquePorts.Ports)
	for i, n := range b.OpaquePorts.PortNames {
		for _, msg := range validation.IsValidPortName(strings.ToLower(n)) {
			errs.add(fmt.Sprintf("builtinRules.opaquePorts.portNames[%d]", i), "%q is not a port name: %s", n, msg)
		}
	}
	checkGlobs(&errs, "builtinRules.opaquePorts.images", b.OpaquePorts.Images)
	for i, w := range b.Unmeshable.Workloads {
		p := fmt.Sprintf("builtinRules.unmeshable.workloads[%d]", i)
		if len(w.Names) == 0 && len(w.Images) == 0 && len(w.Labels) == 0 {
			errs.add(p, "give names, images or labels (an empty entry would match every workload)")
		}
		checkGlobs(&errs, p+".names", w.Names)
		checkGlobs(&errs, p+".images", w.Images)
		checkLabels(&errs, p+".labels", w.Labels)
	}

	names := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			errs.add(p+".name", "required")
		case len(validation.IsDNS1123Label(r.Name)) > 0:
			errs.add(p+".name", "%q: use lowercase letters, digits and '-' (at most 63)", r.Name)
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
			before := len(errs)
			defer func(p string) {
				if len(errs) == before {
					checkSelector(&errs, p, s)
				}
			}(p + ".match.labelSelector")
			checkLabels(&errs, p+".match.labelSelector.matchLabels", s.MatchLabels)
			for j, e := range s.MatchExpressions {
				ep := fmt.Sprintf("%s.match.labelSelector.matchExpressions[%d]", p, j)
				checkKey(&errs, ep+".key", e.Key)
				switch e.Operator {
				case "In", "NotIn":
					if len(e.Values) == 0 {
						errs.add(ep+".values", "operator %s needs at least one value", e.Operator)
					}
					for vi, val := range e.Values {
						for _, msg := range validation.IsValidLabelValue(val) {
							errs.add(fmt.Sprintf("%s.values[%d]", ep, vi), "%q is not a label value: %s", val, msg)
						}
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

// checkKey validates an annotation or label key as apimachinery does
// (an optional DNS-subdomain prefix and a qualified name).
func checkKey(errs *fieldErrors, path, key string) {
	if msgs := validation.IsQualifiedName(key); len(msgs) > 0 {
		errs.add(path, "%q is not a valid annotation or label key: %s", key, strings.Join(msgs, "; "))
	}
}

// checkLabels validates a label set: keys, values, sorted for stable errors.
func checkLabels(errs *fieldErrors, path string, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		checkKey(errs, path+"["+k+"]", k)
		for _, msg := range validation.IsValidLabelValue(labels[k]) {
			errs.add(path+"["+k+"]", "%q is not a label value: %s", labels[k], msg)
		}
	}
}

// checkSelector has apimachinery's selector conversion double-check what
// the field checks above let through (it also bounds what Evaluate does).
func checkSelector(errs *fieldErrors, path string, s *LabelSelector) {
	ms := &metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		ms.MatchExpressions = append(ms.MatchExpressions, metav1.LabelSelectorRequirement{Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	if _, err := metav1.LabelSelectorAsSelector(ms); err != nil {
		errs.add(path, "%v", err)
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
