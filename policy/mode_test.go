package policy

import "testing"

func TestResolveModeTruthTable(t *testing.T) {
	off := DefaultConfig()
	off.DefaultMode = ModeOff
	audit := DefaultConfig()
	audit.DefaultMode = ModeAudit
	label := func(m string) map[string]string { return map[string]string{LabelMode: m} }
	tests := []struct {
		name        string
		cfg         *Config
		namespace   string
		labels      map[string]string
		annotations map[string]string
		want        Mode
	}{
		{"excluded namespace is off whatever its label", DefaultConfig(), "kube-system", label("enforce"), nil, ModeOff},
		{"excluded namespace is off whatever the object says", DefaultConfig(), "linkerd", nil, label("enforce"), ModeOff},
		{"the webhook's own namespace is excluded by default", DefaultConfig(), DefaultWebhookNamespace, nil, nil, ModeOff},
		{"namespace labelled off is off", DefaultConfig(), "apps", label("off"), nil, ModeOff},
		{"namespace labelled audit is audit", DefaultConfig(), "apps", label("audit"), nil, ModeAudit},
		{"namespace labelled enforce is enforce under an off default", off, "apps", label("enforce"), nil, ModeEnforce},
		{"unlabelled namespace gets the enforce default", DefaultConfig(), "apps", map[string]string{}, nil, ModeEnforce},
		{"unlabelled namespace gets the off default", off, "apps", map[string]string{}, nil, ModeOff},
		{"unlabelled namespace gets the audit default", audit, "apps", map[string]string{"team": "a"}, nil, ModeAudit},
		{"unknown namespace labels count as absent", off, "apps", nil, nil, ModeOff},
		{"unknown namespace labels with enforce default", DefaultConfig(), "apps", nil, nil, ModeEnforce},
		{"object annotation lowers enforce to audit", DefaultConfig(), "apps", label("enforce"), label("audit"), ModeAudit},
		{"object annotation lowers enforce to off", DefaultConfig(), "apps", label("enforce"), label("off"), ModeOff},
		{"object annotation lowers audit to off", DefaultConfig(), "apps", label("audit"), label("off"), ModeOff},
		{"object annotation cannot raise audit to enforce", DefaultConfig(), "apps", label("audit"), label("enforce"), ModeAudit},
		{"object annotation cannot raise an off default", off, "apps", nil, label("enforce"), ModeOff},
		{"object annotation equal to the namespace mode keeps it", DefaultConfig(), "apps", label("audit"), label("audit"), ModeAudit},
		{"a misspelt namespace label is ignored", DefaultConfig(), "apps", label("enforced"), nil, ModeEnforce},
		{"a misspelt object annotation is ignored", DefaultConfig(), "apps", nil, label("of"), ModeEnforce},
		{"empty namespace (cluster-scoped) gets the default", DefaultConfig(), "", nil, nil, ModeEnforce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResolveMode(tt.cfg, tt.namespace, tt.labels, tt.annotations); got != tt.want {
				t.Errorf("ResolveMode = %s, want %s", got, tt.want)
			}
		})
	}
}
