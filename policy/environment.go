package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Fact is a yes/no fact about the installed Linkerd that may be unknown.
type Fact int8

// The values of a Fact. The zero value is unknown.
const (
	FactUnknown Fact = iota
	FactTrue
	FactFalse
)

// FactOf turns a known boolean into a Fact.
func FactOf(b bool) Fact {
	if b {
		return FactTrue
	}
	return FactFalse
}

// Known reports whether the fact was read or inferred.
func (f Fact) Known() bool { return f == FactTrue || f == FactFalse }

// True reports whether the fact is known to be true.
func (f Fact) True() bool { return f == FactTrue }

// False reports whether the fact is known to be false.
func (f Fact) False() bool { return f == FactFalse }

func (f Fact) String() string {
	switch f {
	case FactTrue:
		return "true"
	case FactFalse:
		return "false"
	}
	return "unknown"
}

// Version is a major.minor release line, such as Linkerd 2.20 or
// Kubernetes 1.31. The zero value is unknown.
type Version struct {
	Major, Minor int
}

// Known reports whether the version was read.
func (v Version) Known() bool { return v.Major > 0 }

// AtLeast reports whether v is known and not older than major.minor.
func (v Version) AtLeast(major, minor int) bool {
	if !v.Known() {
		return false
	}
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// Before reports whether v is known and older than major.minor.
func (v Version) Before(major, minor int) bool {
	return v.Known() && !v.AtLeast(major, minor)
}

func (v Version) String() string {
	if !v.Known() {
		return "unknown"
	}
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor)
}

// LinkerdRelease is a parsed linkerdVersion: "edge-26.8.3" (open-source
// edge releases, named by year, month and number) or "stable-2.14.10"
// (vendors' stable releases), possibly with a git-describe suffix such as
// "edge-26.8.3-1-gb24cd4059". The zero value is unknown.
type LinkerdRelease struct {
	// Raw is the string as the control plane reports it.
	Raw string
	// Line is the 2.X line: for a stable release its own, for an edge the
	// newest stable line cut at or before it.
	Line Version
	// Edge is (year, month, number) of an edge release; zero for stable.
	Edge [3]int
}

// Known reports whether the release was recognised.
func (r LinkerdRelease) Known() bool { return r.Line.Known() }

// IsEdge reports whether the release is an edge release.
func (r LinkerdRelease) IsEdge() bool { return r.Edge[0] > 0 }

func (r LinkerdRelease) String() string {
	if !r.Known() {
		if r.Raw == "" {
			return "unknown"
		}
		return r.Raw + " (not recognised)"
	}
	return r.Raw + " (" + r.Line.String() + " line)"
}

// linkerdLines maps edge releases to the stable line cut from them: the
// first edge (year, month) of each line.
var linkerdLines = []struct {
	edge [2]int
	line Version
}{
	{[2]int{21, 9}, Version{2, 11}},
	{[2]int{22, 8}, Version{2, 12}},
	{[2]int{23, 4}, Version{2, 13}},
	{[2]int{23, 8}, Version{2, 14}},
	{[2]int{24, 2}, Version{2, 15}},
	{[2]int{24, 8}, Version{2, 16}},
	{[2]int{24, 11}, Version{2, 17}},
	{[2]int{25, 4}, Version{2, 18}},
	{[2]int{25, 10}, Version{2, 19}},
	{[2]int{26, 5}, Version{2, 20}},
}

// ParseLinkerdVersion parses linkerdVersion. A string it does not
// recognise gives an unknown release (Raw kept for messages), never an
// error: rules then behave as for unknown facts.
func ParseLinkerdVersion(s string) LinkerdRelease {
	r := LinkerdRelease{Raw: strings.TrimSpace(s)}
	switch {
	case strings.HasPrefix(r.Raw, "edge-"):
		n, ok := leadingInts(strings.TrimPrefix(r.Raw, "edge-"), 3)
		if !ok || n[0] < 20 || n[1] < 1 || n[1] > 12 {
			return r
		}
		r.Edge = [3]int{n[0], n[1], n[2]}
		r.Line = Version{2, 10}
		for _, l := range linkerdLines {
			if n[0] > l.edge[0] || n[0] == l.edge[0] && n[1] >= l.edge[1] {
				r.Line = l.line
			}
		}
	case strings.HasPrefix(r.Raw, "stable-"):
		n, ok := leadingInts(strings.TrimPrefix(r.Raw, "stable-"), 2)
		if !ok || n[0] != 2 {
			return r
		}
		r.Line = Version{n[0], n[1]}
	}
	return r
}

// edgeAtLeast reports whether an edge release is not older than e.
func (r LinkerdRelease) edgeAtLeast(e [3]int) bool {
	for i := range e {
		if r.Edge[i] != e[i] {
			return r.Edge[i] > e[i]
		}
	}
	return true
}

// linkerdFeature is when something entered Linkerd: the stable line, and
// the edge release that first had it.
type linkerdFeature struct {
	line Version
	edge [3]int
}

// Features the rules depend on (shared/linkerd/README.md, "Version
// history"). The first edge of each was checked against linkerd2's git
// history (the tags containing the commit that brought it):
// serviceAccountToken volumes #7117 in edge-21.11.1, native sidecars
// #11465 in edge-23.11.4, the shutdown endpoint's switch #12705 in
// edge-24.6.2, beta #14587 in edge-25.10.2, GA and on by default #15267 in
// edge-26.5.2.
var (
	featureProjectedToken     = linkerdFeature{Version{2, 12}, [3]int{21, 11, 1}}
	featureNativeSidecar      = linkerdFeature{Version{2, 15}, [3]int{23, 11, 4}}
	featureNativeSidecarBeta  = linkerdFeature{Version{2, 19}, [3]int{25, 10, 2}}
	featureNativeSidecarGA    = linkerdFeature{Version{2, 20}, [3]int{26, 5, 2}}
	featureShutdownEndpointOp = linkerdFeature{Version{2, 16}, [3]int{24, 6, 2}}
)

// has reports whether the release is known to have feature f.
func (r LinkerdRelease) has(f linkerdFeature) bool {
	if !r.Known() {
		return false
	}
	if r.IsEdge() {
		return r.edgeAtLeast(f.edge)
	}
	return r.Line.AtLeast(f.line.Major, f.line.Minor)
}

// Since reports whether the release is known to include a change that
// shipped in the stable line and first appeared in the edge release
// firstEdge (year, month, number), for callers outside the rules (such
// as bootstrap choosing PodMonitors).
func (r LinkerdRelease) Since(line Version, firstEdge [3]int) bool {
	return r.has(linkerdFeature{line: line, edge: firstEdge})
}

// lacks reports whether the release is known to predate feature f.
func (r LinkerdRelease) lacks(f linkerdFeature) bool { return r.Known() && !r.has(f) }

// leadingInts reads want dot-separated integers from the start of s
// ("26.8.3-1-gb24cd4059" → 26, 8, 3), ignoring what follows the last.
func leadingInts(s string, want int) ([]int, bool) {
	out := make([]int, 0, want)
	for len(out) < want {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if end == 0 || end > 6 {
			return nil, false
		}
		n, _ := strconv.Atoi(s[:end])
		out = append(out, n)
		s = s[end:]
		if len(out) < want {
			if !strings.HasPrefix(s, ".") {
				return nil, false
			}
			s = s[1:]
		}
	}
	return out, true
}

// ParseKubernetesVersion parses a Kubernetes version such as "v1.31",
// "1.31.2" or "v1.37.2+k3s1" into its minor line.
func ParseKubernetesVersion(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	n, ok := leadingInts(t, 2)
	if !ok || n[0] != 1 {
		return Version{}, fmt.Errorf("kubernetes version %q: want v1.MINOR or v1.MINOR.PATCH, such as v1.31", s)
	}
	return Version{n[0], n[1]}, nil
}

// Environment is what the rules know about the Linkerd and Kubernetes they
// stand in front of. The zero value knows nothing, and then every rule
// behaves as for Linkerd 2.11 (the conservative case).
type Environment struct {
	// Linkerd is the control plane's linkerdVersion.
	Linkerd LinkerdRelease
	// NativeSidecar is proxy.nativeSidecar: the proxy is injected as a
	// native sidecar unless a pod says otherwise.
	NativeSidecar Fact
	// TokenProjection is identity.serviceAccountTokenProjection: the proxy
	// uses a projected ServiceAccount token, so pods without an automounted
	// token are injected too.
	TokenProjection Fact
	// ShutdownEndpoint is proxy.enableShutdownEndpoint.
	ShutdownEndpoint Fact
	// OpaquePorts is proxy.opaquePorts, the injector's default opaque ports
	// ("" when unknown).
	OpaquePorts string
	// Kubernetes is the apiserver's minor version.
	Kubernetes Version
	// Source says where the Linkerd facts were read, for messages, such as
	// "ConfigMap linkerd/linkerd-config"; "" when none were.
	Source string
}

// LinkerdKnown reports whether any Linkerd fact was read.
func (e Environment) LinkerdKnown() bool { return e.Source != "" || e.Linkerd.Known() }

// NativeSidecarSupported reports whether the installed Linkerd can run the
// proxy as a native sidecar and the cluster's Kubernetes runs native
// sidecars (1.29 or later; Linkerd 2.20's charts require 1.31, so that
// version implies it).
func (e Environment) NativeSidecarSupported() bool {
	if !e.Linkerd.has(featureNativeSidecar) {
		return false
	}
	return e.Kubernetes.AtLeast(1, 29) || !e.Kubernetes.Known() && e.Linkerd.has(featureNativeSidecarGA)
}

// NativeSidecarAnnotation is the annotation name the installed Linkerd
// reads to run a pod's proxy as a native sidecar: GA
// config.linkerd.io/… from 2.20, config.beta.linkerd.io/… in 2.19,
// config.alpha.linkerd.io/… from 2.15; ok is false when the version is
// unknown or predates native sidecars.
func (e Environment) NativeSidecarAnnotation() (name string, ok bool) {
	switch {
	case e.Linkerd.has(featureNativeSidecarGA):
		return AnnotationNativeSidecarGA, true
	case e.Linkerd.has(featureNativeSidecarBeta):
		return AnnotationNativeSidecarBeta, true
	case e.Linkerd.has(featureNativeSidecar):
		return AnnotationNativeSidecarAlpha, true
	}
	return "", false
}

// The native-sidecar annotation under the names Linkerd has read.
const (
	AnnotationNativeSidecarGA    = "config.linkerd.io/proxy-enable-native-sidecar"
	AnnotationNativeSidecarBeta  = "config.beta.linkerd.io/proxy-enable-native-sidecar"
	AnnotationNativeSidecarAlpha = "config.alpha.linkerd.io/proxy-enable-native-sidecar"
)

// ProjectedToken reports whether the installed Linkerd is known to inject
// pods with a projected token (so it does not need the automounted one).
func (e Environment) ProjectedToken() bool {
	if e.TokenProjection.Known() {
		return e.TokenProjection.True() && !e.Linkerd.lacks(featureProjectedToken)
	}
	return e.Linkerd.has(featureProjectedToken)
}

// Summary describes the facts in one line, for check's table, the
// webhook's log and doctor's report.
func (e Environment) Summary() string {
	var b strings.Builder
	if !e.LinkerdKnown() {
		b.WriteString("Linkerd version unknown")
	} else {
		b.WriteString("Linkerd ")
		b.WriteString(e.Linkerd.String())
		fmt.Fprintf(&b, ", proxy.nativeSidecar=%s, identity.serviceAccountTokenProjection=%s", e.NativeSidecar, e.TokenProjection)
		if e.OpaquePorts != "" {
			fmt.Fprintf(&b, ", proxy.opaquePorts=%s", e.OpaquePorts)
		}
	}
	b.WriteString("; Kubernetes ")
	b.WriteString(e.Kubernetes.String())
	if e.Source != "" {
		b.WriteString(" (Linkerd facts from ")
		b.WriteString(e.Source)
		b.WriteString(")")
	}
	return b.String()
}

// linkerdValues is the part of linkerd-config's values the rules read.
type linkerdValues struct {
	LinkerdVersion string `yaml:"linkerdVersion"`
	Proxy          struct {
		NativeSidecar          *bool  `yaml:"nativeSidecar"`
		OpaquePorts            string `yaml:"opaquePorts"`
		EnableShutdownEndpoint *bool  `yaml:"enableShutdownEndpoint"`
	} `yaml:"proxy"`
	Identity struct {
		ServiceAccountTokenProjection *bool `yaml:"serviceAccountTokenProjection"`
	} `yaml:"identity"`
}

// configMapShape is a ConfigMap as `kubectl get -o yaml` prints it.
type configMapShape struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
}

// LinkerdFactsFromValues reads the facts from the control plane's Helm
// values (the `values` key of ConfigMap linkerd-config). Keys it lacks stay
// unknown unless the version tells their default. source names where the
// values came from, for messages.
func LinkerdFactsFromValues(values []byte, source string) (Environment, error) {
	var v linkerdValues
	if err := yaml.Unmarshal(values, &v); err != nil {
		return Environment{}, fmt.Errorf("%s: linkerd-config values are not YAML: %w", source, oneLine(err))
	}
	env := Environment{Linkerd: ParseLinkerdVersion(v.LinkerdVersion), Source: source, OpaquePorts: strings.TrimSpace(v.Proxy.OpaquePorts)}
	env.NativeSidecar = factOrDefault(v.Proxy.NativeSidecar, env.Linkerd, featureNativeSidecarGA, featureNativeSidecar)
	env.TokenProjection = factOrDefault(v.Identity.ServiceAccountTokenProjection, env.Linkerd, featureProjectedToken, featureProjectedToken)
	env.ShutdownEndpoint = FactUnknown
	if v.Proxy.EnableShutdownEndpoint != nil {
		env.ShutdownEndpoint = FactOf(*v.Proxy.EnableShutdownEndpoint)
	} else if env.Linkerd.Known() {
		// Before it was configurable the endpoint was always on.
		env.ShutdownEndpoint = FactOf(env.Linkerd.lacks(featureShutdownEndpointOp))
	}
	return env, nil
}

// factOrDefault is the value when set, else the version's default: true
// from onSince, false before it (and false before the feature existed at
// all, from exists).
func factOrDefault(set *bool, r LinkerdRelease, onSince, exists linkerdFeature) Fact {
	if set != nil {
		if !r.lacks(exists) {
			return FactOf(*set)
		}
		return FactFalse // a key the version does not read
	}
	if !r.Known() {
		return FactUnknown
	}
	return FactOf(r.has(onSince))
}

// LinkerdFactsFromFile reads the facts from a file holding either ConfigMap
// linkerd-config as `kubectl get -o yaml` prints it, or the plain values.
func LinkerdFactsFromFile(name string, data []byte) (Environment, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Environment{}, fmt.Errorf("%s: empty: want ConfigMap linkerd-config or its values", name)
	}
	var cm configMapShape
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return Environment{}, fmt.Errorf("%s: not YAML: %w", name, oneLine(err))
	}
	if cm.Kind == "ConfigMap" {
		values, ok := cm.Data["values"]
		if !ok {
			return Environment{}, fmt.Errorf("%s: ConfigMap %s has no data key \"values\": is it linkerd-config?", name, cm.Metadata.Name)
		}
		return LinkerdFactsFromValues([]byte(values), name)
	}
	if cm.Kind != "" {
		return Environment{}, fmt.Errorf("%s: kind %s: want ConfigMap linkerd-config or its values", name, cm.Kind)
	}
	return LinkerdFactsFromValues(data, name)
}

func oneLine(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
}

// readsNativeSidecarName reports whether the installed Linkerd reads the
// native-sidecar annotation under name; with the version unknown, every
// name counts.
func (e Environment) readsNativeSidecarName(name string) bool {
	r := e.Linkerd
	if !r.Known() {
		return true
	}
	switch name {
	case AnnotationNativeSidecarGA:
		return r.has(featureNativeSidecarGA)
	case AnnotationNativeSidecarBeta:
		return r.has(featureNativeSidecarBeta)
	case AnnotationNativeSidecarAlpha:
		return r.has(featureNativeSidecar)
	}
	return false
}

// linkerdName names the installed Linkerd in messages.
func (e Environment) linkerdName() string {
	if e.Linkerd.Raw == "" {
		return "(version unknown)"
	}
	return e.Linkerd.Raw
}
