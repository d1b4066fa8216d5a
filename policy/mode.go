package policy

// rank orders modes: enforce > audit > off. Unknown values rank as
// unknown (-1) so callers can ignore them.
func rank(m Mode) int {
	switch m {
	case ModeEnforce:
		return 2
	case ModeAudit:
		return 1
	case ModeOff:
		return 0
	}
	return -1
}

// ResolveMode picks the mode an object is admitted in, by the truth table
// of DESIGN.md:
//
//   - an excluded namespace is always off;
//   - else the namespace label linkerd-inject-policy.io/mode, when it is a
//     known mode, else the config's defaultMode (nil labels mean the
//     namespace is unknown, which is the same as unlabelled);
//   - an object annotation with the same key may only lower that mode.
//
// Unknown label or annotation values are ignored: a typo never raises the
// mode, and never silently turns the policy off either.
func ResolveMode(cfg *Config, namespace string, namespaceLabels map[string]string, objectAnnotations map[string]string) Mode {
	m, _ := resolveMode(cfg, namespace, namespaceLabels, objectAnnotations[LabelMode])
	return m
}

// resolveMode is ResolveMode with the reason for the mode.
// objectMode is the object's own annotation LabelMode ("" when it has none).
func resolveMode(cfg *Config, namespace string, namespaceLabels map[string]string, objectMode string) (Mode, string) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if cfg.IsExcluded(namespace) {
		return ModeOff, ModeReasonExcludedNamespace
	}
	mode, reason := cfg.DefaultMode, ModeReasonDefaultMode
	if rank(mode) < 0 {
		mode = ModeEnforce
	}
	if v, ok := namespaceLabels[LabelMode]; ok && rank(Mode(v)) >= 0 {
		mode, reason = Mode(v), ModeReasonNamespaceLabel
	}
	if v := Mode(objectMode); rank(v) >= 0 && rank(v) < rank(mode) {
		mode, reason = v, ModeReasonObjectAnnotation
	}
	return mode, reason
}
