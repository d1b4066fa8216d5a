package policy

import "testing"

const (
	tmplNativeGA   = "spec.template.metadata.annotations[" + AnnotationNativeSidecarGA + "]"
	tmplNativeBeta = "spec.template.metadata.annotations[" + AnnotationNativeSidecarBeta + "]"
)

// classicSidecarJob is a Job whose author asks for the classic sidecar.
const classicSidecarJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: legacy}
spec:
  template:
    metadata: {annotations: {config.linkerd.io/proxy-enable-native-sidecar: "false"}}
    spec: {containers: [{name: c, image: x}]}
`

func TestJobsRuleByFacts(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "a job under linkerd 2.20 with native sidecars on stays meshed, reported and unpatched", manifest: plainJob, facts: facts220,
			want: map[string]string{tmplInject: absent, tmplNativeGA: absent, tmplApplied: absent}, skips: []string{ReasonNativeSidecarCompletes}},
		{name: "a job under linkerd 2.20 on kubernetes 1.31 stays meshed too", manifest: plainJob, facts: facts220, kube: "v1.31",
			want: map[string]string{tmplInject: absent}, skips: []string{ReasonNativeSidecarCompletes}},
		{name: "a job under linkerd 2.19 with native sidecars off on kubernetes 1.31 gets the beta annotation", manifest: plainJob, facts: facts219NoNative, kube: "v1.31",
			want: map[string]string{tmplNativeBeta: "true", tmplInject: absent, tmplApplied: "jobs"}, reasons: []string{ReasonJobNativeSidecar}},
		{name: "a job under linkerd 2.19 on kubernetes 1.28 is disabled as today", manifest: plainJob, facts: facts219NoNative, kube: "v1.28",
			want: map[string]string{tmplInject: "disabled", tmplNativeBeta: absent}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "a job under linkerd 2.19 with the kubernetes version unknown is disabled as today", manifest: plainJob, facts: facts219NoNative,
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "a job under linkerd 2.14 is disabled as today", manifest: plainJob, facts: facts214, kube: "v1.31",
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "a job with no facts is disabled as today", manifest: plainJob,
			want: map[string]string{tmplInject: "disabled", tmplApplied: "jobs"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "a job whose author asks for the classic sidecar is disabled even under 2.20", manifest: classicSidecarJob, facts: facts220,
			want: map[string]string{tmplInject: "disabled", tmplNativeGA: "false"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "a classic-sidecar request under a name 2.19 does not read does not count", manifest: classicSidecarJob, facts: facts219NoNative, kube: "v1.31",
			want: map[string]string{tmplNativeBeta: "true", tmplNativeGA: "false"}, reasons: []string{ReasonJobNativeSidecar}},
		{name: "a job that already asks 2.19 for a native sidecar stays meshed, reported", manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    metadata: {annotations: {config.beta.linkerd.io/proxy-enable-native-sidecar: "true"}}
    spec: {containers: [{name: c, image: x}]}
`, facts: facts219NoNative, kube: "v1.31", want: map[string]string{tmplInject: absent}, skips: []string{ReasonNativeSidecarCompletes}},
		{name: "a job its author kept out of the mesh is neither changed nor reported under 2.20", manifest: authorDisabledJob, facts: facts220,
			want: map[string]string{tmplInject: "disabled"}},
		{name: "a pod owned by a job under 2.20 stays meshed, reported", manifest: `
apiVersion: v1
kind: Pod
metadata:
  name: db-migrate-x7k2p
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: db-migrate, uid: 9f1e, controller: true}]
spec: {containers: [{name: c, image: x}]}
`, facts: facts220, want: map[string]string{podInject: absent}, skips: []string{ReasonNativeSidecarCompletes}},
		{name: "the disable strategy disables under 2.20 too", manifest: plainJob, facts: facts220,
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.Strategy = JobsStrategyDisable },
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "the native-sidecar strategy writes the GA name under 2.20", manifest: plainJob, facts: facts220,
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.Strategy = JobsStrategyNativeSidecar },
			want: map[string]string{tmplNativeGA: "true"}, reasons: []string{ReasonJobNativeSidecar}},
		{name: "the native-sidecar strategy writes the beta name when the version is unknown", manifest: plainJob,
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.Strategy = JobsStrategyNativeSidecar },
			want: map[string]string{tmplNativeBeta: "true", tmplNativeGA: absent}, reasons: []string{ReasonJobNativeSidecar}},
		{name: "a configured annotation name wins over the version's", manifest: plainJob, facts: facts219NoNative, kube: "v1.31",
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.NativeSidecarAnnotation = AnnotationNativeSidecarAlpha },
			want: map[string]string{"spec.template.metadata.annotations[" + AnnotationNativeSidecarAlpha + "]": "true", tmplNativeBeta: absent}, reasons: []string{ReasonJobNativeSidecar}},
	})
}

func TestAdmissionJobsRuleByFacts(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "an admission job under 2.20 stays meshed: its native sidecar proxy exits", manifest: certgenJob, facts: facts220,
			want: map[string]string{tmplInject: absent}, skips: []string{ReasonNativeSidecarCompletes}},
		{name: "an admission job under 2.19 with native sidecars off on 1.31 gets the beta annotation", manifest: certgenJob, facts: facts219NoNative, kube: "v1.31",
			want: map[string]string{tmplNativeBeta: "true", tmplApplied: "admission-jobs"}, reasons: []string{ReasonJobNativeSidecar}},
		{name: "an admission job with no facts is disabled as today", manifest: certgenJob,
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonAdmissionJob}},
		{name: "an admission job under 2.20 with the disable strategy is disabled", manifest: certgenJob, facts: facts220,
			cfg:  func(c *Config) { c.BuiltinRules.AdmissionJobs.Strategy = JobsStrategyDisable },
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonAdmissionJob}},
		{name: "an admission job under 2.14 is disabled", manifest: certgenJob, facts: facts214, kube: "v1.31",
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonAdmissionJob}},
	})
}

const eckCluster = `
apiVersion: elasticsearch.k8s.elastic.co/v1
kind: Elasticsearch
metadata: {name: logs}
spec:
  version: 8.17.0
  nodeSets:
    - {name: masters, count: 3}
    - name: data
      count: 2
      podTemplate: {spec: {containers: [{name: elasticsearch}]}}
`

func TestECKRuleByFacts(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "elasticsearch under 2.20 with projected tokens is left alone and its node sets untouched", manifest: eckCluster, facts: facts220,
			want:  map[string]string{"spec.nodeSets[0].podTemplate": absent, "spec.nodeSets[1].podTemplate.spec.automountServiceAccountToken": absent, objApplied: absent},
			skips: []string{ReasonTokenProjected}},
		{name: "elasticsearch under 2.14 with projected tokens is left alone too", manifest: eckCluster, facts: facts214,
			want: map[string]string{"spec.nodeSets[0].podTemplate": absent}, skips: []string{ReasonTokenProjected}},
		{name: "elasticsearch under 2.20 without token projection gets the token as today", manifest: eckCluster, facts: facts220NoToken,
			want:    map[string]string{"spec.nodeSets[0].podTemplate.spec.automountServiceAccountToken": "true", "spec.nodeSets[1].podTemplate.spec.automountServiceAccountToken": "true"},
			reasons: []string{ReasonECKToken, ReasonECKToken}},
		{name: "elasticsearch with no facts gets the token as today", manifest: eckCluster,
			want:    map[string]string{"spec.nodeSets[0].podTemplate.spec.automountServiceAccountToken": "true"},
			reasons: []string{ReasonECKToken, ReasonECKToken}},
		{name: "an eck pod under 2.20 is left alone", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: logs-es-data-0, labels: {common.k8s.elastic.co/type: elasticsearch}}
spec: {automountServiceAccountToken: false, containers: [{name: elasticsearch, image: es}]}
`, facts: facts220, want: map[string]string{"spec.automountServiceAccountToken": "false"}, skips: []string{ReasonTokenProjected}},
		{name: "a kibana under 2.20 is left alone", manifest: `
apiVersion: kibana.k8s.elastic.co/v1
kind: Kibana
metadata: {name: kb}
spec: {version: 8.17.0, count: 1}
`, facts: facts220, want: map[string]string{"spec.podTemplate": absent}, skips: []string{ReasonTokenProjected}},
	})
}

const mysql4406 = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql}
spec:
  serviceName: mysql
  selector: {matchLabels: {app: mysql}}
  template:
    metadata: {labels: {app: mysql}}
    spec: {containers: [{name: db, image: example.com/db:8, ports: [{name: mysql, containerPort: 4406}, {name: metrics, containerPort: 9104}]}]}
`

func TestOpaquePortsByNameAndImage(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "a mysql statefulset whose port 4406 is named mysql gets 4406 opaque", manifest: mysql4406,
			want: map[string]string{tmplOpaque: "4406"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "a service whose port is named mysql gets its port opaque", manifest: `
apiVersion: v1
kind: Service
metadata: {name: mysql}
spec: {ports: [{name: mysql, port: 4406, targetPort: 4406}, {name: metrics, port: 9104}]}
`, want: map[string]string{podOpaque: "4406"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "a service whose targetPort names a mysql port gets its port opaque", manifest: `
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{name: sql, port: 4406, targetPort: mysql}]}
`, want: map[string]string{podOpaque: "4406"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "a service port with appProtocol postgresql is opaque", manifest: `
apiVersion: v1
kind: Service
metadata: {name: pg}
spec: {ports: [{name: db, port: 6543, appProtocol: postgresql}]}
`, want: map[string]string{podOpaque: "6543"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "a postfix container's ports are opaque on any number", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: mail}
spec:
  template:
    spec: {containers: [{name: smtp, image: "docker.io/boky/postfix:v4", ports: [{containerPort: 2525}]}, {name: web, image: nginx, ports: [{containerPort: 8080}]}]}
`, want: map[string]string{tmplOpaque: "2525"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "port names are compared without case", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: x, ports: [{name: SMTP, containerPort: 2500}]}]}
`, want: map[string]string{podOpaque: "2500"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "port names can be switched off by configuration", manifest: mysql4406,
			cfg:  func(c *Config) { c.BuiltinRules.OpaquePorts.PortNames = []string{} },
			want: map[string]string{tmplOpaque: absent}},
		{name: "the installed injector's own opaque ports are kept when the rule annotates a pod", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: x, ports: [{name: mysql, containerPort: 4406}, {containerPort: 8888}, {containerPort: 8080}]}]}
`, facts: "custom-opaque-ports.yaml", want: map[string]string{podOpaque: "4406,8888"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "a named port already listed by name counts as covered", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {config.linkerd.io/opaque-ports: mysql}}
spec: {containers: [{name: c, image: x, ports: [{name: mysql, containerPort: 4406}]}]}
`, want: map[string]string{podOpaque: "mysql"}},
	})
}

func TestUnmeshableLonghornInAnyNamespace(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "longhorn's driver deployer in another namespace is matched by its image", ns: "storage", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: longhorn-driver-deployer, namespace: storage}
spec: {template: {spec: {containers: [{name: d, image: "longhornio/longhorn-manager:v1.9.0"}]}}}
`, want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonKnownUnmeshable}},
		{name: "longhorn's csi attacher in another namespace is matched by its image", ns: "storage", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: csi-attacher, namespace: storage}
spec: {template: {spec: {containers: [{name: a, image: "docker.io/longhornio/csi-attacher:v4.8.1"}]}}}
`, want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonKnownUnmeshable}},
		{name: "longhorn's driver deployer from a mirrored registry is matched by the chart's labels", ns: "storage", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ld, namespace: storage, labels: {app.kubernetes.io/name: longhorn}}
spec: {template: {metadata: {labels: {app: longhorn-driver-deployer, app.kubernetes.io/name: longhorn}}, spec: {containers: [{name: d, image: "mirror.example.com/lh/manager:v1"}]}}}
`, want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonKnownUnmeshable}},
		{name: "a csi attacher that is not longhorn's is not matched", ns: "storage", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: csi-attacher, namespace: storage}
spec: {template: {spec: {containers: [{name: a, image: "registry.k8s.io/sig-storage/csi-attacher:v4.8.1"}]}}}
`},
	})
}
