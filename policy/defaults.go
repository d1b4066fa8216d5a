package policy

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
	if b.AdmissionJobs.Strategy == "" {
		b.AdmissionJobs.Strategy = db.AdmissionJobs.Strategy
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
	if b.OpaquePorts.PortNames == nil {
		b.OpaquePorts.PortNames = db.OpaquePorts.PortNames
	}
	if b.OpaquePorts.Images == nil {
		b.OpaquePorts.Images = db.OpaquePorts.Images
	}
	if b.Unmeshable.Workloads == nil {
		b.Unmeshable.Workloads = db.Unmeshable.Workloads
	}
	if c.Rules == nil {
		c.Rules = []UserRule{}
	}
}
