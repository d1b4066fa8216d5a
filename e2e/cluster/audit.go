package cluster

// auditPolicy records every write with its request and response bodies for
// the kinds our webhook handles (so a test or a person can see exactly what
// was stored and which admission annotations the apiserver added), metadata
// for other writes, and nothing for reads, leases and events (the noise of a
// running controller manager).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  verbs: ["get", "list", "watch"]
- level: None
  resources:
  - group: coordination.k8s.io
    resources: ["leases"]
  - group: ""
    resources: ["events"]
  - group: events.k8s.io
    resources: ["events"]
- level: RequestResponse
  verbs: ["create", "update", "patch"]
  resources:
  - group: ""
    resources: ["pods", "services"]
  - group: apps
    resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  - group: batch
    resources: ["jobs", "cronjobs"]
  - group: elasticsearch.k8s.elastic.co
  - group: kibana.k8s.elastic.co
- level: Metadata
`
