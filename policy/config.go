package policy

// APIVersion and KindPolicyConfig identify a configuration file.
const (
	APIVersion       = "linkerd-inject-policy.io/v1alpha1"
	KindPolicyConfig = "PolicyConfig"
)

// Built-in rule names, as they appear in the trace annotation, in reasons
// and in metrics.
const (
	RuleJobs          = "jobs"
	RuleAdmissionJobs = "admission-jobs"
	RuleIngress       = "ingress"
	RuleOpaquePorts   = "opaque-ports"
	RuleECK           = "eck"
	RuleUnmeshable    = "unmeshable"
)

// Jobs strategies.
const (
	// JobsStrategyAuto decides by the installed Linkerd (the default): a
	// proxy that already runs as a native sidecar is left alone; native
	// sidecars supported but off → the native-sidecar annotation; otherwise,
	// or facts unknown → disable.
	JobsStrategyAuto = "auto"
	// JobsStrategyDisable keeps Job pods out of the mesh.
	JobsStrategyDisable = "disable"
	// JobsStrategyNativeSidecar keeps them meshed with the proxy running as
	// a Kubernetes native sidecar, which exits when the job's containers do.
	JobsStrategyNativeSidecar = "native-sidecar"
)

// DefaultNativeSidecarAnnotation is the native-sidecar annotation written
// when the installed Linkerd's version is unknown and nativeSidecarAnnotation
// is not configured: the beta name, which Linkerd 2.19 reads and 2.20 still
// does. With a known version the name that version reads is written
// (Environment.NativeSidecarAnnotation).
const DefaultNativeSidecarAnnotation = AnnotationNativeSidecarBeta

// DefaultWebhookNamespace is the namespace the chart installs the webhook in;
// it is excluded by default so the webhook never polices itself.
const DefaultWebhookNamespace = "linkerd-inject-policy"

// Config is a PolicyConfig: what the engine does, and where.
//
// Decode it with LoadConfig (strict, defaulted, validated) or start from
// DefaultConfig. Evaluate only reads it, so one *Config may be shared by
// concurrent requests as long as nobody modifies it after publishing it.
type Config struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
	// DefaultMode applies to namespaces without the mode label.
	DefaultMode Mode `yaml:"defaultMode" json:"defaultMode"`
	// ExcludedNamespaces are never policed, whatever their label says.
	ExcludedNamespaces []string `yaml:"excludedNamespaces" json:"excludedNamespaces"`
	// BuiltinRules configures the rules that ship with the engine.
	BuiltinRules BuiltinRules `yaml:"builtinRules" json:"builtinRules"`
	// Rules are the user's own rules, applied after the built-in ones.
	Rules []UserRule `yaml:"rules" json:"rules"`
}

// BuiltinRules holds one section per built-in rule.
type BuiltinRules struct {
	Jobs          JobsRule          `yaml:"jobs" json:"jobs"`
	AdmissionJobs AdmissionJobsRule `yaml:"admissionJobs" json:"admissionJobs"`
	Ingress       IngressRule       `yaml:"ingress" json:"ingress"`
	OpaquePorts   OpaquePortsRule   `yaml:"opaquePorts" json:"opaquePorts"`
	ECK           ECKRule           `yaml:"eck" json:"eck"`
	Unmeshable    UnmeshableRule    `yaml:"unmeshable" json:"unmeshable"`
}

// Toggle is what every built-in rule has.
type Toggle struct {
	// Enabled turns the rule on; nil means the default, true.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Override lets the rule replace a value the user set explicitly
	// (linkerd.io/inject, or the field the rule writes). Default false: the
	// user's explicit choice wins and the rule reports user_override.
	Override bool `yaml:"override" json:"override"`
}

// On reports whether the rule is enabled.
func (t Toggle) On() bool { return t.Enabled == nil || *t.Enabled }

// JobsRule keeps Jobs and CronJobs from hanging on a proxy that never exits.
type JobsRule struct {
	Toggle `yaml:",inline"`
	// Strategy is JobsStrategyAuto (default), JobsStrategyDisable or
	// JobsStrategyNativeSidecar.
	Strategy string `yaml:"strategy" json:"strategy"`
	// NativeSidecarAnnotation is the key set to "true" where a strategy
	// runs the proxy as a native sidecar; "" (default) is the name the
	// installed Linkerd reads, DefaultNativeSidecarAnnotation when unknown.
	NativeSidecarAnnotation string `yaml:"nativeSidecarAnnotation" json:"nativeSidecarAnnotation"`
}

// nativeSidecarKey is the annotation name to write for env.
func (r *JobsRule) nativeSidecarKey(env Environment) string {
	if r.NativeSidecarAnnotation != "" {
		return r.NativeSidecarAnnotation
	}
	if name, ok := env.NativeSidecarAnnotation(); ok {
		return name
	}
	return DefaultNativeSidecarAnnotation
}

// AdmissionJobsRule matches the certificate Jobs of admission webhooks
// (kube-prometheus-stack, ingress-nginx), which must never be meshed.
type AdmissionJobsRule struct {
	Toggle `yaml:",inline"`
	// JobNames are globs matched against the Job's name (for a Pod: the
	// name of the Job that owns it, or its job-name label).
	JobNames []string `yaml:"jobNames" json:"jobNames"`
	// Images are image patterns (see MatchImage) of any container.
	Images []string `yaml:"images" json:"images"`
	// Strategy is AdmissionJobsStrategyAuto (default: the jobs rule's
	// auto logic, so a proxy that runs as a native sidecar stays and the
	// job completes) or JobsStrategyDisable (always out of the mesh, as
	// before Linkerd had native sidecars).
	Strategy string `yaml:"strategy" json:"strategy"`
}

// AdmissionJobsStrategyAuto is the admission-jobs rule's default strategy:
// the same decision as the jobs rule's auto, whatever the jobs strategy.
const AdmissionJobsStrategyAuto = JobsStrategyAuto

// IngressRule meshes ingress controllers in Linkerd's ingress mode.
type IngressRule struct {
	Toggle `yaml:",inline"`
	// Matchers select ingress controllers; any one matching is enough.
	Matchers []WorkloadMatcher `yaml:"matchers" json:"matchers"`
	// SkipOutboundPorts are merged into config.linkerd.io/skip-outbound-ports
	// (443: the controller must reach the Kubernetes API directly).
	SkipOutboundPorts []int `yaml:"skipOutboundPorts" json:"skipOutboundPorts"`
}

// WorkloadMatcher matches a workload by image and/or labels; every field
// given must match.
type WorkloadMatcher struct {
	// Image is an image pattern (see MatchImage) any container must match.
	Image string `yaml:"image" json:"image,omitempty"`
	// Labels must all be present with these values, on the pod template or
	// on the object.
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// OpaquePortsRule marks server-speaks-first ports opaque.
type OpaquePortsRule struct {
	// Enabled turns the rule on; nil means true. The rule only ever adds
	// ports, so it has no override.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Ports that are opaque when a workload or Service declares them.
	Ports []int `yaml:"ports" json:"ports"`
	// PortNames are port names and appProtocols of server-speaks-first
	// protocols: a container port or Service port so named (or a Service
	// port whose appProtocol or targetPort name is one) is opaque, on any
	// port number. Compared case-insensitively.
	PortNames []string `yaml:"portNames" json:"portNames"`
	// Images are image patterns (see MatchImage) of servers that speak
	// first: every TCP port their containers declare is opaque.
	Images []string `yaml:"images" json:"images"`
}

// On reports whether the rule is enabled.
func (r OpaquePortsRule) On() bool { return r.Enabled == nil || *r.Enabled }

// ECKRule gives ECK's Pods the service account token the proxy needs.
type ECKRule struct {
	Toggle `yaml:",inline"`
}

// UnmeshableRule keeps workloads that cannot work with a proxy out of the mesh.
type UnmeshableRule struct {
	Toggle `yaml:",inline"`
	// HostNetwork disables injection for pods on the host network; nil means true.
	HostNetwork *bool `yaml:"hostNetwork" json:"hostNetwork"`
	// Workloads are known system workloads that break with a proxy.
	Workloads []UnmeshableWorkload `yaml:"workloads" json:"workloads"`
}

// HostNetworkOn reports whether hostNetwork pods are handled.
func (r UnmeshableRule) HostNetworkOn() bool { return r.HostNetwork == nil || *r.HostNetwork }

// UnmeshableWorkload describes workloads that break with a proxy: in the
// namespace given (any when empty), those matching any of names, images or
// labels.
type UnmeshableWorkload struct {
	// Namespace is a glob; empty matches every namespace.
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// Names are globs matched against the workload's name; a Pod matches
	// when its name (or generateName) is such a name followed by "-".
	Names []string `yaml:"names" json:"names,omitempty"`
	// Images are image patterns (see MatchImage); any container matching
	// is enough.
	Images []string `yaml:"images" json:"images,omitempty"`
	// Labels must all be present with these values, on the pod template or
	// on the object.
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
	// Message explains why, in the audit warnings; optional.
	Message string `yaml:"message" json:"message,omitempty"`
}

// UserRule is a rule written by the user in the config's rules: list.
type UserRule struct {
	// Name appears in the trace annotation; lowercase letters, digits and
	// '-', unique, and not a built-in rule's name.
	Name string `yaml:"name" json:"name"`
	// Reason is the snake_case reason code; default "user_rule".
	Reason string `yaml:"reason" json:"reason,omitempty"`
	// Message explains the change; default "set by policy rule NAME".
	Message string `yaml:"message" json:"message,omitempty"`
	// Override lets the rule replace a value the object already has.
	Override bool      `yaml:"override" json:"override,omitempty"`
	Match    UserMatch `yaml:"match" json:"match"`
	// Target is where annotations go: "podTemplate" (default: the pod
	// template, or the object itself for Pods and kinds without one) or
	// "object" (the object's own metadata).
	Target  string      `yaml:"target" json:"target,omitempty"`
	Actions UserActions `yaml:"actions" json:"actions"`
}

// Rule targets.
const (
	TargetPodTemplate = "podTemplate"
	TargetObject      = "object"
)

// UserMatch selects objects; every criterion given must match, an empty
// one matches everything.
type UserMatch struct {
	// Kinds are kind names such as Deployment (see Supported).
	Kinds []string `yaml:"kinds" json:"kinds,omitempty"`
	// Namespaces are globs.
	Namespaces []string `yaml:"namespaces" json:"namespaces,omitempty"`
	// Names are globs matched against metadata.name (or generateName).
	Names []string `yaml:"names" json:"names,omitempty"`
	// LabelSelector is matched against the pod template's labels, or the
	// object's for kinds without a template.
	LabelSelector *LabelSelector `yaml:"labelSelector" json:"labelSelector,omitempty"`
	// Images are image patterns (see MatchImage); any container matching is enough.
	Images []string `yaml:"images" json:"images,omitempty"`
}

// LabelSelector is a Kubernetes label selector.
type LabelSelector struct {
	MatchLabels      map[string]string          `yaml:"matchLabels" json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `yaml:"matchExpressions" json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string   `yaml:"key" json:"key"`
	Operator string   `yaml:"operator" json:"operator"`
	Values   []string `yaml:"values" json:"values,omitempty"`
}

// UserActions are what a user rule writes.
type UserActions struct {
	SetAnnotations    map[string]string `yaml:"setAnnotations" json:"setAnnotations,omitempty"`
	RemoveAnnotations []string          `yaml:"removeAnnotations" json:"removeAnnotations,omitempty"`
}

// DefaultExcludedNamespaces are the namespaces excluded by default: the
// control plane, Linkerd itself, cert-manager and the webhook's own.
func DefaultExcludedNamespaces() []string {
	return []string{"kube-system", "kube-public", "kube-node-lease", "linkerd", "linkerd-viz", "cert-manager", DefaultWebhookNamespace}
}

// DefaultOpaquePorts are MySQL, PostgreSQL and SMTP plus Linkerd's own
// default opaque ports, so the policy never weakens what Linkerd's injector
// would have added.
func DefaultOpaquePorts() []int {
	return []int{25, 587, 3306, 4444, 5432, 6379, 9300, 11211}
}

// DefaultOpaquePortNames are the port names and appProtocols of
// server-speaks-first protocols (MySQL, PostgreSQL, SMTP and submission,
// and those of Linkerd's default opaque ports: Galera, Redis, memcached).
func DefaultOpaquePortNames() []string {
	return []string{"mysql", "mariadb", "galera", "postgres", "postgresql", "pgsql", "smtp", "submission", "redis", "memcache", "memcached"}
}

// DefaultOpaqueImages are images of servers that speak first.
func DefaultOpaqueImages() []string {
	return []string{"mysql", "mariadb", "percona-server", "percona-xtradb-cluster", "postgres", "postgresql", "postgis", "postfix"}
}

// msgLonghorn explains the default unmeshable workloads.
const msgLonghorn = "Longhorn's CSI driver deployment fails its mount propagation check with a proxy"

// DefaultConfig is the built-in configuration: cluster-wide enforcement of
// every built-in rule, handling the known problems (hanging Jobs, Traefik,
// server-speaks-first databases, ECK, Longhorn). Each call returns a
// fresh value the caller may modify.
func DefaultConfig() *Config {
	c := &Config{
		APIVersion:         APIVersion,
		Kind:               KindPolicyConfig,
		DefaultMode:        ModeEnforce,
		ExcludedNamespaces: DefaultExcludedNamespaces(),
		BuiltinRules: BuiltinRules{
			Jobs: JobsRule{Strategy: JobsStrategyAuto},
			AdmissionJobs: AdmissionJobsRule{
				JobNames: []string{"*-admission-create", "*-admission-patch"},
				Images:   []string{"kube-webhook-certgen"},
				Strategy: AdmissionJobsStrategyAuto,
			},
			Ingress: IngressRule{
				Matchers: []WorkloadMatcher{
					{Image: "traefik"},
					{Labels: map[string]string{"app.kubernetes.io/name": "traefik"}},
				},
				SkipOutboundPorts: []int{443},
			},
			OpaquePorts: OpaquePortsRule{Ports: DefaultOpaquePorts(), PortNames: DefaultOpaquePortNames(), Images: DefaultOpaqueImages()},
			Unmeshable: UnmeshableRule{
				Workloads: []UnmeshableWorkload{
					{
						Namespace: "longhorn-system",
						Names: []string{
							"longhorn-driver-deployer", "longhorn-csi-plugin",
							"csi-attacher", "csi-provisioner", "csi-resizer", "csi-snapshotter",
						},
						Message: msgLonghorn,
					},
					// The same parts in any namespace, by what they are:
					// the manager image (the driver deployer and the CSI
					// plugin run it), Longhorn's CSI sidecar images, and
					// the chart's labels of the driver deployer.
					{Images: []string{"*longhornio/longhorn-manager", "*longhornio/csi-*"}, Message: msgLonghorn},
					{Labels: map[string]string{"app.kubernetes.io/name": "longhorn", "app": "longhorn-driver-deployer"}, Message: msgLonghorn},
				},
			},
		},
		Rules: []UserRule{},
	}
	b := &c.BuiltinRules
	for _, t := range []*Toggle{&b.Jobs.Toggle, &b.AdmissionJobs.Toggle, &b.Ingress.Toggle, &b.ECK.Toggle, &b.Unmeshable.Toggle} {
		t.Enabled = boolPtr(true)
	}
	b.OpaquePorts.Enabled = boolPtr(true)
	b.Unmeshable.HostNetwork = boolPtr(true)
	return c
}

// IsExcluded reports whether namespace is never policed.
func (c *Config) IsExcluded(namespace string) bool {
	if c == nil {
		return false
	}
	for _, ns := range c.ExcludedNamespaces {
		if ns == namespace {
			return true
		}
	}
	return false
}
