package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Codes of the annotation lint (Finding.Code).
const (
	// FindingMisplaced: a Linkerd annotation on a workload's own metadata
	// (or a Service's, other than opaque-ports), where Linkerd never reads it.
	FindingMisplaced = "misplaced_annotation"
	// FindingInvalid: a value Linkerd rejects (it then ignores the annotation).
	FindingInvalid = "invalid_annotation"
	// FindingUnknown: a config.*linkerd.io/ key Linkerd does not read.
	FindingUnknown = "unknown_annotation"
	// FindingDeprecated: a name the installed Linkerd still reads but
	// deprecates in favour of another.
	FindingDeprecated = "deprecated_annotation"
	// FindingUnsupported: a name the installed Linkerd does not read yet
	// (or no longer).
	FindingUnsupported = "unsupported_annotation"
	// FindingTooMany: the last finding when an object has more than
	// maxFindings; it counts the rest.
	FindingTooMany = "too_many_findings"
)

// maxFindings bounds the lint's work and output on one object: past it,
// one last finding says how many more keys were not examined.
const maxFindings = 20

// Linkerd's annotation prefixes.
const (
	prefixLinkerd     = "linkerd.io/"
	prefixConfig      = "config.linkerd.io/"
	prefixConfigAlpha = "config.alpha.linkerd.io/"
	prefixConfigBeta  = "config.beta.linkerd.io/"
)

// valueKind is what values an annotation takes.
type valueKind int8

const (
	valueAny      valueKind = iota
	valueBool               // what Go's strconv.ParseBool accepts, as Linkerd parses it
	valueEnabled            // enabled or disabled
	valueInject             // enabled, disabled or ingress
	valuePortList           // ports, ranges and port names, comma-separated
)

// proxyAnnotations are the pod annotations the proxy injector reads (names
// from linkerd2's pkg/k8s/labels.go at edge-26.8.3), with the values they
// take where the lint can check them.
var proxyAnnotations = map[string]valueKind{
	AnnotationInject:                                                valueInject,
	prefixConfig + "access-log":                                     valueAny,
	prefixConfig + "admin-port":                                     valueAny,
	prefixConfig + "close-wait-timeout":                             valueAny,
	prefixConfig + "control-port":                                   valueAny,
	prefixConfig + "debug-image":                                    valueAny,
	prefixConfig + "debug-image-pull-policy":                        valueAny,
	prefixConfig + "debug-image-version":                            valueAny,
	prefixConfig + "default-inbound-policy":                         valueAny,
	prefixConfig + "enable-debug-sidecar":                           valueBool,
	prefixConfig + "enable-external-profiles":                       valueBool,
	prefixConfig + "enable-gateway":                                 valueBool,
	prefixConfig + "image-pull-policy":                              valueAny,
	prefixConfig + "inbound-port":                                   valueAny,
	AnnotationOpaquePorts:                                           valuePortList,
	prefixConfig + "outbound-port":                                  valueAny,
	prefixConfig + "pod-inbound-ports":                              valuePortList,
	prefixConfig + "proxy-additional-env":                           valueAny,
	prefixConfig + "proxy-admin-shutdown":                           valueEnabled,
	prefixConfig + "proxy-await":                                    valueEnabled,
	prefixConfig + "proxy-cpu-limit":                                valueAny,
	prefixConfig + "proxy-cpu-ratio-limit":                          valueAny,
	prefixConfig + "proxy-cpu-request":                              valueAny,
	prefixConfig + "proxy-disable-inbound-protocol-detect-timeout":  valueBool,
	prefixConfig + "proxy-disable-outbound-protocol-detect-timeout": valueBool,
	AnnotationNativeSidecarGA:                                       valueBool,
	prefixConfig + "proxy-ephemeral-storage-limit":                  valueAny,
	prefixConfig + "proxy-ephemeral-storage-request":                valueAny,
	prefixConfig + "proxy-gid":                                      valueAny,
	prefixConfig + "proxy-image":                                    valueAny,
	prefixConfig + "proxy-inbound-connect-timeout":                  valueAny,
	prefixConfig + "proxy-inbound-discovery-cache-unused-timeout":   valueAny,
	prefixConfig + "proxy-log-format":                               valueAny,
	prefixConfig + "proxy-log-http-headers":                         valueAny,
	prefixConfig + "proxy-log-level":                                valueAny,
	prefixConfig + "proxy-memory-limit":                             valueAny,
	prefixConfig + "proxy-memory-request":                           valueAny,
	prefixConfig + "proxy-metrics-hostname-labels":                  valueBool,
	prefixConfig + "proxy-outbound-connect-timeout":                 valueAny,
	prefixConfig + "proxy-outbound-discovery-cache-unused-timeout":  valueAny,
	prefixConfig + "proxy-require-identity-inbound-ports":           valuePortList,
	prefixConfig + "proxy-uid":                                      valueAny,
	prefixConfig + "proxy-version":                                  valueAny,
	prefixConfig + "shutdown-grace-period":                          valueAny,
	AnnotationSkipInboundPorts:                                      valuePortList,
	AnnotationSkipOutboundPorts:                                     valuePortList,
	prefixConfig + "skip-subnets":                                   valueAny,
	AnnotationNativeSidecarAlpha:                                    valueBool,
	prefixConfigAlpha + "proxy-wait-before-exit-seconds":            valueAny,
	AnnotationNativeSidecarBeta:                                     valueBool,
}

// AnnotationSkipInboundPorts lists inbound ports that bypass the proxy.
const AnnotationSkipInboundPorts = "config.linkerd.io/skip-inbound-ports"

// linkerdWritten are linkerd.io/ names Linkerd itself writes or reads on
// other objects: not lint findings, but candidates for a did-you-mean.
var linkerdWritten = []string{
	"linkerd.io/created-by", "linkerd.io/proxy-version", "linkerd.io/trust-root-sha256",
	"linkerd.io/workload-ns", "linkerd.io/control-plane-ns", "linkerd.io/control-plane-component",
}

// sortedProxyAnnotations are the names of proxyAnnotations, sorted, for
// deterministic suggestions.
var sortedProxyAnnotations = func() []string {
	names := make([]string, 0, len(proxyAnnotations))
	for k := range proxyAnnotations {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}()

// isLinkerdPodAnnotation reports whether key is one the lint examines:
// linkerd.io/inject and the config.*linkerd.io/ family.
func isLinkerdPodAnnotation(key string) bool {
	if key == AnnotationInject {
		return true
	}
	return isConfigKey(key)
}

// isConfigKey: config.linkerd.io/…, config.alpha.linkerd.io/…, or any other
// config.<x>.linkerd.io/… (a prefix Linkerd does not use is a typo too).
func isConfigKey(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	return ok && strings.HasPrefix(prefix, "config.") && (prefix == "config.linkerd.io" || strings.HasSuffix(prefix, ".linkerd.io"))
}

// Lint reports what is wrong with obj's Linkerd annotations for the
// Linkerd that env describes: on a workload's own metadata (where Linkerd
// never reads them), invalid values, unknown names, and names the
// installed version deprecates or does not read. It never changes obj and
// never fails: values of the wrong shape are skipped (Evaluate reports
// them). Kinds: those of Kinds(), and Namespace (whose config.linkerd.io
// annotations Linkerd copies onto its pods).
func Lint(obj *unstructured.Unstructured, env Environment) []Finding {
	if obj == nil || obj.Object == nil {
		return nil
	}
	l := &linter{env: env}
	gvk := obj.GroupVersionKind()
	if gvk.Group == "" && gvk.Kind == "Namespace" {
		l.values(obj.Object, []any{"metadata"}, "")
		return l.done()
	}
	k, ok := lookupKind(gvk)
	if !ok {
		return nil
	}
	if k.name == "Service" {
		l.service(obj.Object)
		return l.done()
	}
	if k.self {
		l.values(obj.Object, []any{"metadata"}, "")
		return l.done()
	}
	// want is where Linkerd reads what is misplaced: the kind's one pod
	// template, or every item's of its list.
	var want string
	switch {
	case k.template != nil:
		want = k.prefix + "metadata.annotations"
	case k.list != nil:
		want = displayPath(k.list) + "[*]." + displayPath(k.item) + ".metadata.annotations"
	}
	for _, m := range k.metadata {
		l.misplaced(obj.Object, m, k.name, want)
	}
	switch {
	case k.template != nil:
		l.values(obj.Object, extendPath(k.template, "metadata"), k.prefix)
	case k.list != nil:
		items, _ := get(obj.Object, k.list...).([]any)
		for i := range items {
			p := extendPath(extendPath(k.list, i), k.item...)
			l.values(obj.Object, extendPath(p, "metadata"), displayPath(p)+".")
			if l.full() {
				break
			}
		}
	}
	return l.done()
}

type linter struct {
	env      Environment
	findings []Finding
	dropped  int
}

func (l *linter) full() bool { return len(l.findings) >= maxFindings }

func (l *linter) add(code, path, format string, args ...any) {
	if l.full() {
		l.dropped++
		return
	}
	l.findings = append(l.findings, Finding{Code: code, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (l *linter) done() []Finding {
	if l.dropped > 0 {
		l.findings = append(l.findings, Finding{Code: FindingTooMany, Message: fmt.Sprintf("%d more Linkerd annotation findings on this object not shown", l.dropped)})
	}
	return l.findings
}

// annotationKeys returns the sorted keys of the annotations at md (a
// metadata path) that the lint examines; nil when the shape is wrong.
func annotationKeys(obj map[string]any, md []any) (map[string]any, []string) {
	ann, ok := get(obj, extendPath(md, "annotations")...).(map[string]any)
	if !ok {
		return nil, nil
	}
	var keys []string
	for k := range ann {
		if isLinkerdPodAnnotation(k) || strings.HasPrefix(k, prefixLinkerd) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return ann, keys
}

// misplaced reports Linkerd's pod annotations on a workload's own metadata.
func (l *linter) misplaced(obj map[string]any, md []any, kindName, want string) {
	_, keys := annotationKeys(obj, md)
	where := displayPath(md)
	for _, k := range keys {
		if !isLinkerdPodAnnotation(k) {
			continue
		}
		l.add(FindingMisplaced, where+".annotations["+k+"]",
			"%s on the %s's own %s is never read: Linkerd reads it from the pod; put it in %s", k, kindName, where, want)
	}
}

// service lints a Service: Linkerd reads only opaque-ports from it.
func (l *linter) service(obj map[string]any) {
	ann, keys := annotationKeys(obj, []any{"metadata"})
	for _, k := range keys {
		path := "metadata.annotations[" + k + "]"
		switch {
		case k == AnnotationOpaquePorts:
			v, _ := ann[k].(string)
			l.value(path, k, v)
		case isLinkerdPodAnnotation(k):
			l.add(FindingMisplaced, path, "%s on a Service is never read: Linkerd reads only %s from Services; put it on the pod template of the workload the Service selects", k, AnnotationOpaquePorts)
		}
	}
}

// values lints the annotations of a pod (template) or Namespace at md.
func (l *linter) values(obj map[string]any, md []any, prefix string) {
	ann, keys := annotationKeys(obj, md)
	for _, k := range keys {
		if l.full() {
			l.dropped++
			continue
		}
		path := prefix + "metadata.annotations[" + k + "]"
		v, _ := ann[k].(string)
		if _, known := proxyAnnotations[k]; !known {
			if isConfigKey(k) {
				l.add(FindingUnknown, path, "%s is not an annotation Linkerd reads%s", k, didYouMean(k))
			} else if s := closest(k, 2); s != "" {
				// Linkerd writes many linkerd.io/ names itself; only a
				// near-miss of one it reads is worth a word.
				l.add(FindingUnknown, path, "%s is not an annotation Linkerd reads (did you mean %s?)", k, s)
			}
			continue
		}
		l.version(path, k)
		l.value(path, k, v)
	}
}

// value checks the value of a known annotation.
func (l *linter) value(path, key, v string) {
	switch proxyAnnotations[key] {
	case valueInject:
		if v != "enabled" && v != "disabled" && v != "ingress" {
			l.add(FindingInvalid, path, "%s=%q is not a value Linkerd accepts, so it ignores it%s", key, truncate(v, 100), suggestValue(v, "enabled", "disabled", "ingress"))
		}
	case valueEnabled:
		if v != "enabled" && v != "disabled" {
			l.add(FindingInvalid, path, "%s=%q is not a value Linkerd accepts, so it ignores it%s", key, truncate(v, 100), suggestValue(v, "enabled", "disabled"))
		}
	case valueBool:
		if _, err := strconv.ParseBool(v); err != nil {
			l.add(FindingInvalid, path, "%s=%q is not a boolean, so Linkerd ignores it%s", key, truncate(v, 100), suggestValue(v, "true", "false"))
		}
	case valuePortList:
		if _, err := parsePortSet(v, maxPortEntries); err != nil {
			l.add(FindingInvalid, path, "%s=%q: %v", key, truncate(v, 100), err)
		}
	}
}

// version reports names the installed Linkerd deprecates or does not read.
func (l *linter) version(path, key string) {
	r := l.env.Linkerd
	if !r.Known() {
		return
	}
	reads, _ := l.env.NativeSidecarAnnotation()
	switch key {
	case AnnotationNativeSidecarAlpha, AnnotationNativeSidecarBeta, AnnotationNativeSidecarGA:
		var since linkerdFeature
		switch key {
		case AnnotationNativeSidecarAlpha:
			since = featureNativeSidecar
		case AnnotationNativeSidecarBeta:
			since = featureNativeSidecarBeta
		default:
			since = featureNativeSidecarGA
		}
		switch {
		case r.lacks(featureNativeSidecar):
			l.add(FindingUnsupported, path, "Linkerd %s does not run the proxy as a native sidecar (that came in %s), so %s does nothing", r.Raw, featureNativeSidecar.line, key)
		case r.lacks(since):
			l.add(FindingUnsupported, path, "Linkerd %s does not read %s yet (from %s); it reads %s", r.Raw, key, since.line, reads)
		case key != reads:
			l.add(FindingDeprecated, path, "Linkerd %s deprecates %s; write %s", r.Raw, key, reads)
		}
	case prefixConfig + "proxy-admin-shutdown":
		if r.lacks(featureShutdownEndpointOp) {
			l.add(FindingUnsupported, path, "Linkerd %s does not read %s (from %s): its proxy always serves /shutdown", r.Raw, key, featureShutdownEndpointOp.line)
		}
	}
}

// didYouMean suggests the closest name Linkerd reads, if any is close.
func didYouMean(key string) string {
	if s := closest(key, 4); s != "" {
		return " (did you mean " + s + "?)"
	}
	return ""
}

// closest is the known name nearest to key, within max edits; "" if none.
// Only names of about key's length are compared, and the lint stops after
// maxFindings, so this stays cheap whatever the object holds.
func closest(key string, max int) string {
	best, bestD := "", max+1
	for _, n := range sortedProxyAnnotations {
		if near(n, key, bestD) {
			if d := editDistance(n, key); d < bestD {
				best, bestD = n, d
			}
		}
	}
	for _, n := range linkerdWritten {
		if near(n, key, bestD) && editDistance(n, key) < bestD {
			return "" // a name Linkerd writes: not a typo of one it reads
		}
	}
	return best
}

// near is a cheap bound: strings whose lengths differ by limit or more
// are at least limit edits apart.
func near(a, b string, limit int) bool {
	d := len(a) - len(b)
	return d < limit && -d < limit
}

func suggestValue(v string, valid ...string) string {
	best, bestD := "", 3
	for _, s := range valid {
		if !near(v, s, bestD) {
			continue
		}
		if d := editDistance(strings.ToLower(v), s); d < bestD {
			best, bestD = s, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (want " + strings.Join(valid, ", ") + ")"
}
