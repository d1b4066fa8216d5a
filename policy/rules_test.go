package policy

import "testing"

const (
	tmplInject    = "spec.template.metadata.annotations[linkerd.io/inject]"
	tmplApplied   = "spec.template.metadata.annotations[linkerd-inject-policy.io/applied]"
	objApplied    = "metadata.annotations[linkerd-inject-policy.io/applied]"
	tmplOpaque    = "spec.template.metadata.annotations[config.linkerd.io/opaque-ports]"
	tmplSkipOut   = "spec.template.metadata.annotations[config.linkerd.io/skip-outbound-ports]"
	podInject     = "metadata.annotations[linkerd.io/inject]"
	podOpaque     = "metadata.annotations[config.linkerd.io/opaque-ports]"
	nativeSidecar = "spec.template.metadata.annotations[" + DefaultNativeSidecarAnnotation + "]"
)

const plainJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: db-migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: ghcr.io/example/migrate:1}]
`

// meshedJob is a Job its author explicitly meshed.
const meshedJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: report}
spec:
  template:
    metadata: {annotations: {linkerd.io/inject: enabled}}
    spec: {containers: [{name: c, image: report}]}
`

// authorDisabledJob is a Job its author explicitly kept out of the mesh.
const authorDisabledJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: quiet}
spec:
  template:
    metadata: {annotations: {linkerd.io/inject: disabled}}
    spec: {containers: [{name: c, image: x}]}
`

func TestJobsRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "job in enforced namespace is not meshed", manifest: plainJob,
			want:    map[string]string{tmplInject: "disabled", tmplApplied: "jobs", objApplied: "jobs"},
			reasons: []string{ReasonJobNeverCompletes}},
		{name: "cronjob template is not meshed", manifest: `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
`, want: map[string]string{"spec.jobTemplate.spec.template.metadata.annotations[linkerd.io/inject]": "disabled"},
			reasons: []string{ReasonJobNeverCompletes}},
		{name: "job the user explicitly meshed is left alone", manifest: meshedJob,
			want: map[string]string{tmplInject: "enabled", objApplied: absent}, skips: []string{ReasonUserOverride}},
		{name: "job the user explicitly meshed is disabled when the rule overrides", manifest: meshedJob,
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.Override = true },
			want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "job already disabled by its author is unchanged and not reported", manifest: authorDisabledJob,
			want: map[string]string{tmplInject: "disabled", objApplied: absent}},
		{name: "job owned by a cronjob is left to its cronjob", manifest: `
apiVersion: batch/v1
kind: Job
metadata:
  name: nightly-28000000
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: 1b7c, controller: true}]
spec:
  template:
    spec: {containers: [{name: c, image: x}]}
`, want: map[string]string{tmplInject: absent}},
		{name: "pod owned by a job is not meshed", manifest: `
apiVersion: v1
kind: Pod
metadata:
  generateName: db-migrate-
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: db-migrate, uid: 9f1e, controller: true}]
spec: {containers: [{name: c, image: x}]}
`, want: map[string]string{podInject: "disabled", objApplied: "jobs"}, reasons: []string{ReasonJobNeverCompletes}},
		{name: "pod owned by a replicaset is not a job", manifest: `
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, uid: 1, controller: true}]
spec: {containers: [{name: c, image: nginx}]}
`, want: map[string]string{podInject: absent}},
		{name: "native-sidecar strategy keeps the job meshed with a native sidecar proxy", manifest: plainJob,
			cfg:     func(c *Config) { c.BuiltinRules.Jobs.Strategy = JobsStrategyNativeSidecar },
			want:    map[string]string{tmplInject: absent, nativeSidecar: "true", tmplApplied: "jobs"},
			reasons: []string{ReasonJobNativeSidecar}},
		{name: "native-sidecar strategy uses the configured annotation key", manifest: plainJob,
			cfg: func(c *Config) {
				c.BuiltinRules.Jobs.Strategy = JobsStrategyNativeSidecar
				c.BuiltinRules.Jobs.NativeSidecarAnnotation = "config.alpha.linkerd.io/proxy-enable-native-sidecar"
			},
			want:    map[string]string{"spec.template.metadata.annotations[config.alpha.linkerd.io/proxy-enable-native-sidecar]": "true"},
			reasons: []string{ReasonJobNativeSidecar}},
		{name: "native-sidecar strategy leaves a job its author kept out of the mesh", manifest: authorDisabledJob,
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.Strategy = JobsStrategyNativeSidecar },
			want: map[string]string{nativeSidecar: absent}},
		{name: "disabled jobs rule changes nothing", manifest: plainJob,
			cfg:  func(c *Config) { c.BuiltinRules.Jobs.Enabled = boolPtr(false) },
			want: map[string]string{tmplInject: absent}},
	})
}

const certgenJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: kube-prometheus-stack-admission-create}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: create
          image: registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.2
          args: [create]
`

func TestAdmissionJobsRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "kube-prometheus-stack admission-create job is not meshed", manifest: certgenJob,
			want:    map[string]string{tmplInject: "disabled", objApplied: "admission-jobs"},
			reasons: []string{ReasonAdmissionJob}},
		{name: "admission job stays unmeshed under the native-sidecar jobs strategy", manifest: certgenJob,
			cfg:     func(c *Config) { c.BuiltinRules.Jobs.Strategy = JobsStrategyNativeSidecar },
			want:    map[string]string{tmplInject: "disabled", nativeSidecar: absent, objApplied: "admission-jobs"},
			reasons: []string{ReasonAdmissionJob}},
		{name: "ingress-nginx admission-patch job matches by name alone", manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: ingress-nginx-admission-patch}
spec:
  template:
    spec: {containers: [{name: patch, image: example.com/mirror/certgen:v1}]}
`, want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonAdmissionJob}},
		{name: "job running kube-webhook-certgen under any name matches by image", manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: my-certs}
spec:
  template:
    spec: {containers: [{name: c, image: "kube-webhook-certgen@sha256:0123"}]}
`, want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonAdmissionJob}},
		{name: "pod of an admission job is not meshed", manifest: `
apiVersion: v1
kind: Pod
metadata:
  generateName: kube-prometheus-stack-admission-create-
  labels: {batch.kubernetes.io/job-name: kube-prometheus-stack-admission-create}
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: kube-prometheus-stack-admission-create, uid: 7, controller: true}]
spec: {containers: [{name: create, image: registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.2}]}
`, want: map[string]string{podInject: "disabled", objApplied: "admission-jobs"}, reasons: []string{ReasonAdmissionJob}},
		{name: "admission job explicitly meshed by the user is left alone", manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: x-admission-create}
spec:
  template:
    metadata: {annotations: {linkerd.io/inject: enabled}}
    spec: {containers: [{name: c, image: kube-webhook-certgen}]}
`, want: map[string]string{tmplInject: "enabled"}, skips: []string{ReasonUserOverride}},
		{name: "a deployment named like an admission job is not a job", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: foo-admission-create}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: kube-webhook-certgen}]}
`, want: map[string]string{tmplInject: absent}},
	})
}

const traefikDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: traefik
  labels: {app.kubernetes.io/name: traefik}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: traefik}}
  template:
    metadata: {labels: {app.kubernetes.io/name: traefik}}
    spec:
      containers: [{name: traefik, image: "docker.io/traefik:v3.3.6", ports: [{containerPort: 8000, name: web}]}]
`

func TestIngressRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "traefik is meshed in ingress mode and skips the API server port", manifest: traefikDeployment,
			want:    map[string]string{tmplInject: "ingress", tmplSkipOut: "443", tmplApplied: "ingress"},
			reasons: []string{ReasonIngressMode, ReasonIngressSkipOutbound}},
		{name: "traefik matched by image alone", manifest: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: edge}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: proxy, image: "traefik:v2.11"}]}
`, want: map[string]string{tmplInject: "ingress", tmplSkipOut: "443"}, reasons: []string{ReasonIngressMode, ReasonIngressSkipOutbound}},
		{name: "skip-outbound-ports are merged with the existing list and ranges", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/skip-outbound-ports: "25,4000-4100"}}
    spec: {containers: [{name: t, image: traefik}]}
`, want: map[string]string{tmplSkipOut: "25,4000-4100,443"}, reasons: []string{ReasonIngressMode, ReasonIngressSkipOutbound}},
		{name: "443 already covered by a range is not added again", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/skip-outbound-ports: "400-500"}}
    spec: {containers: [{name: t, image: traefik}]}
`, want: map[string]string{tmplSkipOut: "400-500", tmplInject: "ingress"}, reasons: []string{ReasonIngressMode}},
		{name: "an unparsable skip-outbound-ports value is left untouched with a warning", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/skip-outbound-ports: "https;80"}}
    spec: {containers: [{name: t, image: traefik}]}
`, want: map[string]string{tmplSkipOut: "https;80", tmplInject: "ingress"}, reasons: []string{ReasonIngressMode}, skips: []string{ReasonUnparsableValue}},
		{name: "traefik the user keeps out of the mesh gets no skip ports", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {linkerd.io/inject: disabled}}
    spec: {containers: [{name: t, image: traefik}]}
`, want: map[string]string{tmplInject: "disabled", tmplSkipOut: absent}, skips: []string{ReasonUserOverride}},
		{name: "a configured nginx matcher meshes ingress-nginx too", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress-nginx-controller}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b, app.kubernetes.io/name: ingress-nginx}}
    spec: {containers: [{name: controller, image: "registry.k8s.io/ingress-nginx/controller:v1.12.1"}]}
`, cfg: func(c *Config) {
			c.BuiltinRules.Ingress.Matchers = append(c.BuiltinRules.Ingress.Matchers, WorkloadMatcher{Image: "registry.k8s.io/ingress-nginx/controller", Labels: map[string]string{"app.kubernetes.io/name": "ingress-nginx"}})
		}, want: map[string]string{tmplInject: "ingress"}, reasons: []string{ReasonIngressMode, ReasonIngressSkipOutbound}},
		{name: "an image merely containing traefik is not traefik", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: "traefik/whoami:v1.10"}]}
`, want: map[string]string{tmplInject: absent}},
		{name: "the traefik service is not an ingress workload", manifest: `
apiVersion: v1
kind: Service
metadata: {name: traefik, labels: {app.kubernetes.io/name: traefik}}
spec: {ports: [{port: 443, targetPort: websecure}]}
`, want: map[string]string{podInject: absent}},
	})
}

func TestOpaquePortsRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "mysql statefulset marks 3306 opaque", manifest: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql}
spec:
  serviceName: mysql
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: mysql, image: example.com/db, ports: [{name: mysql, containerPort: 3306}, {name: x, containerPort: 33060}]}]}
`, want: map[string]string{tmplOpaque: "3306", tmplApplied: "opaque-ports"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "only declared ports are added", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: postfix}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: m, image: example.com/mail, ports: [{containerPort: 587}, {containerPort: 25}, {containerPort: 8080}]}]}
`, want: map[string]string{tmplOpaque: "587,25"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "existing opaque ports are kept and merged as a set", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/opaque-ports: "8086, 9000-9100"}}
    spec: {containers: [{name: m, image: db, ports: [{containerPort: 5432}, {containerPort: 9300}]}]}
`, want: map[string]string{tmplOpaque: "8086,9000-9100,5432,9300"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "a port named in the existing value counts as covered", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/opaque-ports: "mysql"}}
    spec: {containers: [{name: m, image: db, ports: [{name: mysql, containerPort: 3306}]}]}
`, want: map[string]string{tmplOpaque: "mysql"}},
		{name: "an unparsable opaque-ports value is left untouched with a warning", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/opaque-ports: "3306;5432"}}
    spec: {containers: [{name: m, image: db, ports: [{containerPort: 3306}]}]}
`, want: map[string]string{tmplOpaque: "3306;5432"}, skips: []string{ReasonUnparsableValue}},
		{name: "udp ports are never opaque", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: dns}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: m, image: dns, ports: [{containerPort: 25, protocol: UDP}]}]}
`, want: map[string]string{tmplOpaque: absent}},
		{name: "postgres service with a named target port is marked by its port", manifest: `
apiVersion: v1
kind: Service
metadata: {name: postgresql}
spec: {ports: [{name: tcp-postgresql, port: 5432, targetPort: tcp-postgresql}]}
`, want: map[string]string{podOpaque: "5432", objApplied: "opaque-ports"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "service whose numeric target port is mysql gets its service port", manifest: `
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{port: 13306, targetPort: 3306}, {port: 80, targetPort: 8080}]}
`, want: map[string]string{podOpaque: "13306"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "web service is untouched", manifest: `
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80, targetPort: http}]}
`, want: map[string]string{podOpaque: absent, objApplied: absent}},
		{name: "the port list is configurable", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: m, image: db, ports: [{containerPort: 4406}, {containerPort: 3306}]}]}
`, cfg: func(c *Config) { c.BuiltinRules.OpaquePorts.Ports = []int{4406} },
			want: map[string]string{tmplOpaque: "4406"}, reasons: []string{ReasonServerSpeaksFirst}},
		{name: "init containers (native sidecars) count too", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: redis, image: redis, restartPolicy: Always, ports: [{containerPort: 6379}]}]
  containers: [{name: app, image: app}]
`, want: map[string]string{podOpaque: "6379"}, reasons: []string{ReasonServerSpeaksFirst}},
	})
}

func TestECKRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "kibana gets a token on a created pod template", manifest: `
apiVersion: kibana.k8s.elastic.co/v1
kind: Kibana
metadata: {name: efk}
spec: {version: 8.17.4, count: 1}
`, want: map[string]string{"spec.podTemplate.spec.automountServiceAccountToken": "true", "spec.version": "8.17.4", objApplied: "eck"},
			reasons: []string{ReasonECKToken}},
		{name: "every elasticsearch node set gets a token, existing pod template fields kept", manifest: `
apiVersion: elasticsearch.k8s.elastic.co/v1beta1
kind: Elasticsearch
metadata: {name: efk}
spec:
  version: 8.17.4
  nodeSets:
    - {name: default, count: 1}
    - name: ingest
      count: 1
      podTemplate: {spec: {containers: [{name: elasticsearch, resources: {limits: {memory: 2Gi}}}]}}
`, want: map[string]string{
			"spec.nodeSets[0].podTemplate.spec.automountServiceAccountToken":          "true",
			"spec.nodeSets[1].podTemplate.spec.automountServiceAccountToken":          "true",
			"spec.nodeSets[1].podTemplate.spec.containers[0].resources.limits.memory": "2Gi",
		}, reasons: []string{ReasonECKToken, ReasonECKToken}},
		{name: "a node set whose user explicitly refused the token is left alone", manifest: `
apiVersion: elasticsearch.k8s.elastic.co/v1
kind: Elasticsearch
metadata: {name: efk}
spec:
  version: 8.17.4
  nodeSets: [{name: default, count: 1, podTemplate: {spec: {automountServiceAccountToken: false}}}]
`, want: map[string]string{"spec.nodeSets[0].podTemplate.spec.automountServiceAccountToken": "false"}, skips: []string{ReasonUserOverride}},
		{name: "pod made by eck gets its token back", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: efk-es-default-0, labels: {common.k8s.elastic.co/type: elasticsearch}}
spec: {automountServiceAccountToken: false, containers: [{name: elasticsearch, image: es}]}
`, want: map[string]string{"spec.automountServiceAccountToken": "true"}, reasons: []string{ReasonECKToken}},
		{name: "pod made by eck but kept out of the mesh keeps no token", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: efk-es-default-0, labels: {common.k8s.elastic.co/type: elasticsearch}, annotations: {linkerd.io/inject: disabled}}
spec: {automountServiceAccountToken: false, containers: [{name: elasticsearch, image: es}]}
`, want: map[string]string{"spec.automountServiceAccountToken": "false"}},
		{name: "any other pod without a token never gets one", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {automountServiceAccountToken: false, containers: [{name: c, image: x}]}
`, want: map[string]string{"spec.automountServiceAccountToken": "false"}},
		{name: "a deployment without a token never gets one", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {automountServiceAccountToken: false, containers: [{name: c, image: x}]}
`, want: map[string]string{"spec.template.spec.automountServiceAccountToken": "false"}},
	})
}

func TestUnmeshableRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "node-exporter on the host network is not meshed", manifest: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {hostNetwork: true, containers: [{name: c, image: quay.io/prometheus/node-exporter, ports: [{containerPort: 9100}]}]}
`, want: map[string]string{tmplInject: "disabled", tmplApplied: "unmeshable"}, reasons: []string{ReasonHostNetwork}},
		{name: "a host network job is reported once, by the unmeshable rule", manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec: {hostNetwork: true, restartPolicy: Never, containers: [{name: c, image: x}]}
`, want: map[string]string{tmplInject: "disabled", tmplApplied: "unmeshable"}, reasons: []string{ReasonHostNetwork}},
		{name: "host network handling can be turned off", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {hostNetwork: true, containers: [{name: c, image: x}]}
`, cfg: func(c *Config) { c.BuiltinRules.Unmeshable.HostNetwork = boolPtr(false) }, want: map[string]string{podInject: absent}},
		{name: "longhorn driver deployer is not meshed", ns: "longhorn-system", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: longhorn-driver-deployer}
spec:
  selector: {matchLabels: {app: longhorn-driver-deployer}}
  template:
    metadata: {labels: {app: longhorn-driver-deployer}}
    spec: {containers: [{name: c, image: longhornio/longhorn-manager:v1.8.1}]}
`, want: map[string]string{tmplInject: "disabled"}, reasons: []string{ReasonKnownUnmeshable}},
		{name: "longhorn driver deployer pod is not meshed", manifest: `
apiVersion: v1
kind: Pod
metadata:
  name: longhorn-driver-deployer-6bc898bc7b-nmzkc
  namespace: longhorn-system
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: longhorn-driver-deployer-6bc898bc7b, uid: 1, controller: true}]
spec: {containers: [{name: c, image: longhornio/longhorn-manager:v1.8.1}]}
`, want: map[string]string{podInject: "disabled"}, reasons: []string{ReasonKnownUnmeshable}},
		{name: "a workload of the same name elsewhere is meshed", ns: "shop", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: longhorn-driver-deployer}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: x}]}
`, want: map[string]string{tmplInject: absent}},
		{name: "other longhorn workloads are meshed", ns: "longhorn-system", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: longhorn-ui}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: longhornio/longhorn-ui}]}
`, want: map[string]string{tmplInject: absent}},
	})
}

func TestUserRules(t *testing.T) {
	withRule := func(r UserRule) func(*Config) {
		return func(c *Config) { c.Rules = append(c.Rules, r) }
	}
	redis := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: cache, namespace: team-a, labels: {tier: cache}}
spec:
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}, annotations: {config.linkerd.io/proxy-cpu-limit: "1", old: x}}
    spec: {containers: [{name: redis, image: "docker.io/library/redis:7"}]}
`
	runRuleCases(t, []ruleCase{
		{name: "a user rule sets and removes annotations on the pod template", manifest: redis,
			cfg: withRule(UserRule{Name: "redis-proxy", Match: UserMatch{Kinds: []string{"Deployment"}, Namespaces: []string{"team-*"}, Images: []string{"redis"}, LabelSelector: &LabelSelector{MatchLabels: map[string]string{"app": "cache"}}},
				Actions: UserActions{SetAnnotations: map[string]string{"config.linkerd.io/proxy-memory-limit": "64Mi"}, RemoveAnnotations: []string{"old"}}}),
			want: map[string]string{
				"spec.template.metadata.annotations[config.linkerd.io/proxy-memory-limit]": "64Mi",
				"spec.template.metadata.annotations[old]":                                  absent,
				tmplApplied: "redis-proxy",
			}, reasons: []string{ReasonUserRule, ReasonUserRule}},
		{name: "a user rule does not replace a value the object sets", manifest: redis,
			cfg: withRule(UserRule{Name: "cpu", Match: UserMatch{Names: []string{"cache"}},
				Actions: UserActions{SetAnnotations: map[string]string{"config.linkerd.io/proxy-cpu-limit": "2"}}}),
			want: map[string]string{"spec.template.metadata.annotations[config.linkerd.io/proxy-cpu-limit]": "1"}, skips: []string{ReasonUserOverride}},
		{name: "a user rule with override replaces it", manifest: redis,
			cfg: withRule(UserRule{Name: "cpu", Override: true, Reason: "cpu_budget", Match: UserMatch{Names: []string{"cache"}},
				Actions: UserActions{SetAnnotations: map[string]string{"config.linkerd.io/proxy-cpu-limit": "2"}}}),
			want: map[string]string{"spec.template.metadata.annotations[config.linkerd.io/proxy-cpu-limit]": "2"}, reasons: []string{"cpu_budget"}},
		{name: "a user rule targeting the object writes its metadata", manifest: redis,
			cfg: withRule(UserRule{Name: "owner", Target: TargetObject, Match: UserMatch{Kinds: []string{"Deployment"}},
				Actions: UserActions{SetAnnotations: map[string]string{"example.com/owner": "team-a"}}}),
			want: map[string]string{"metadata.annotations[example.com/owner]": "team-a", objApplied: "owner", tmplApplied: absent}, reasons: []string{ReasonUserRule}},
		{name: "a user rule for another namespace does not match", manifest: redis,
			cfg: withRule(UserRule{Name: "b", Match: UserMatch{Namespaces: []string{"team-b"}},
				Actions: UserActions{SetAnnotations: map[string]string{"x": "y"}}}),
			want: map[string]string{"spec.template.metadata.annotations[x]": absent}},
		{name: "a user rule whose selector does not match does nothing", manifest: redis,
			cfg: withRule(UserRule{Name: "sel", Match: UserMatch{LabelSelector: &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "NotIn", Values: []string{"cache"}}}}},
				Actions: UserActions{SetAnnotations: map[string]string{"x": "y"}}}),
			want: map[string]string{"spec.template.metadata.annotations[x]": absent}},
		{name: "a user rule cannot take linkerd.io/inject from a built-in rule", manifest: plainJob,
			cfg: withRule(UserRule{Name: "mesh-jobs", Match: UserMatch{Kinds: []string{"Job"}},
				Actions: UserActions{SetAnnotations: map[string]string{AnnotationInject: "enabled"}}}),
			want: map[string]string{tmplInject: "disabled", tmplApplied: "jobs"}, reasons: []string{ReasonJobNeverCompletes}},
	})
}
