// Package injector is a STAND-IN for Linkerd's proxy injector, for the e2e
// tests and the demo only. It is not Linkerd and injects no working proxy:
// its containers name images under stand-in.invalid that do not exist.
//
// Linkerd's own injector cannot be built here (its source is not reachable
// through the Go module proxy), yet the e2e suite must prove where our
// webhook sits in the admission chain and what the two together store. The
// stand-in is registered under Linkerd's configuration name,
// linkerd-proxy-injector-webhook-config, so the apiserver orders it exactly
// as it would order the real one (after linkerd-inject-policy, by name).
//
// What it does is modelled on the behaviour observed on the real
// proxy-injector of linkerd2 edge-26.8.3 (the table in docs/linkerd.md),
// reading, on every request as the real one does, ConfigMap linkerd-config
// (key values) and linkerd-identity-trust-roots in its Linkerd namespace:
//
//   - Pods on CREATE whose own linkerd.io/inject, else their namespace's, is
//     enabled or ingress get linkerd-init and the proxy: by default (values
//     proxy.nativeSidecar) as a native sidecar, the init container
//     linkerd-proxy with restartPolicy Always right after linkerd-init and
//     before the pod's own init containers; with nativeSidecar false, or
//     the pod (or its namespace) saying
//     config.linkerd.io/proxy-enable-native-sidecar: "false" (GA, read
//     before config.beta.linkerd.io/…, before config.alpha.linkerd.io/…),
//     as the classic sidecar containers[0] with a postStart hook.
//   - ingress adds the proxy env LINKERD2_PROXY_INGRESS_MODE=true.
//   - config.linkerd.io/skip-outbound-ports replaces linkerd-init's
//     --outbound-ports-to-ignore (default proxyInit.ignoreOutboundPorts).
//   - A pod's opaque-ports annotation is kept and given to the proxy env
//     LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION; without one,
//     the declared container ports in proxy.opaquePorts are written to it,
//     for pods left uninjected too.
//   - With identity.serviceAccountTokenProjection true the proxy gets the
//     projected volume linkerd-identity-token (so automountServiceAccountToken
//     false does not matter); with it false such pods are skipped. (The
//     harness's apiserver lacks the ServiceAccount admission plugin, so the
//     stand-in sets serviceAccountName: default where it is empty, as that
//     plugin would have before any webhook.)
//   - hostNetwork pods, pods that already have linkerd-proxy, and invalid
//     inject values (yes, enable) are skipped; nothing tells the user.
//   - Namespace config.linkerd.io/ (and .alpha/.beta) annotations the pod
//     lacks are copied onto injected pods; injected pods carry
//     linkerd.io/proxy-version, linkerd.io/created-by and
//     linkerd.io/trust-root-sha256 (sha256 of the trust bundle).
//   - Services on CREATE without config.linkerd.io/opaque-ports get their
//     namespace's value, else the Service ports whose target port number
//     is in proxy.opaquePorts (port 80 → targetPort 5432 gives "80"; a
//     named targetPort gives nothing).
//
// It also records every object it is sent, so a test can check what our
// webhook had already written when Linkerd's turn came.
package injector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"gomodules.xyz/jsonpatch/v2"
)

// ConfigurationName is Linkerd's MutatingWebhookConfiguration name.
const ConfigurationName = "linkerd-proxy-injector-webhook-config"

// WebhookName is the webhook entry's name (Linkerd's).
const WebhookName = "linkerd-proxy-injector.linkerd.io"

// Names of what the stand-in reads and writes, as Linkerd names them.
const (
	ProxyContainerName = "linkerd-proxy"
	InitContainerName  = "linkerd-init"
	// TokenVolumeName is the projected ServiceAccount token volume.
	TokenVolumeName = "linkerd-identity-token"

	ConfigMapName           = "linkerd-config"
	TrustRootsName          = "linkerd-identity-trust-roots"
	TrustRootsKey           = "ca-bundle.crt"
	DefaultNamespace        = "linkerd"
	ProxyVersionAnnotation  = "linkerd.io/proxy-version"
	CreatedByAnnotation     = "linkerd.io/created-by"
	TrustRootSHAAnnotation  = "linkerd.io/trust-root-sha256"
	InjectAnnotation        = "linkerd.io/inject"
	OpaquePortsAnnotation   = "config.linkerd.io/opaque-ports"
	SkipOutboundAnnotation  = "config.linkerd.io/skip-outbound-ports"
	NativeSidecarGA         = "config.linkerd.io/proxy-enable-native-sidecar"
	NativeSidecarBeta       = "config.beta.linkerd.io/proxy-enable-native-sidecar"
	NativeSidecarAlpha      = "config.alpha.linkerd.io/proxy-enable-native-sidecar"
	EnvIngressMode          = "LINKERD2_PROXY_INGRESS_MODE"
	EnvOpaquePorts          = "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"
	AdmissionWebhooksLabel  = "config.linkerd.io/admission-webhooks"
	standInImageRegistry    = "stand-in.invalid/"
	standInCreatedByVersion = "linkerd/proxy-injector e2e stand-in, modelled on edge-26.8.3"
)

// Cluster is what the stand-in reads on every request.
type Cluster interface {
	// NamespaceAnnotations of a namespace.
	NamespaceAnnotations(ctx context.Context, namespace string) (map[string]string, error)
	// ConfigMapData of namespace/name; an error satisfying
	// apierrors.IsNotFound when it does not exist.
	ConfigMapData(ctx context.Context, namespace, name string) (map[string]string, error)
}

// FromClient reads the cluster through a clientset.
func FromClient(cs kubernetes.Interface) Cluster { return clientCluster{cs} }

type clientCluster struct{ cs kubernetes.Interface }

func (c clientCluster) NamespaceAnnotations(ctx context.Context, namespace string) (map[string]string, error) {
	ns, err := c.cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ns.Annotations, nil
}

func (c clientCluster) ConfigMapData(ctx context.Context, namespace, name string) (map[string]string, error) {
	cm, err := c.cs.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

// Record is one admission request the stand-in received.
type Record struct {
	Kind      string
	Namespace string
	Name      string // generateName for Pods made by controllers
	Operation string
	// Annotations of the Pod, or of the Pod template for workloads, as
	// received (after every webhook ordered before this one).
	Annotations map[string]string
	// Object is the raw object as received.
	Object json.RawMessage
	// Injected tells whether the stand-in added its proxy; Native whether
	// as a native sidecar. Skipped says why a Pod was not injected.
	Injected, Native bool
	Skipped          string
}

// Injector is the stand-in webhook; it implements http.Handler.
type Injector struct {
	cluster          Cluster
	linkerdNamespace string

	mu      sync.Mutex
	records []Record
}

// New returns a stand-in reading linkerd-config from linkerdNamespace
// ("" = linkerd) through cluster.
func New(cluster Cluster, linkerdNamespace string) *Injector {
	if linkerdNamespace == "" {
		linkerdNamespace = DefaultNamespace
	}
	return &Injector{cluster: cluster, linkerdNamespace: linkerdNamespace}
}

// Records returns a copy of everything received so far, in arrival order.
func (i *Injector) Records() []Record {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]Record(nil), i.records...)
}

// ServeHTTP answers an AdmissionReview (v1).
func (i *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("not an AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp, err := i.review(r.Context(), review.Request)
	if err != nil {
		// Like the real injector (failurePolicy Ignore): the object is
		// admitted as it is.
		resp = &admissionv1.AdmissionResponse{
			UID:     review.Request.UID,
			Allowed: true,
			Result:  &metav1.Status{Message: "stand-in injector: " + err.Error()},
		}
	}
	review.Response = resp
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

func (i *Injector) review(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(req.Object.Raw, &obj.Object); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	rec := Record{
		Kind:      req.Kind.Kind,
		Namespace: req.Namespace,
		Name:      obj.GetName(),
		Operation: string(req.Operation),
		Object:    append(json.RawMessage(nil), req.Object.Raw...),
	}
	if rec.Name == "" {
		rec.Name = obj.GetGenerateName()
	}
	switch req.Kind.Kind {
	case "Pod", "Service":
		rec.Annotations = obj.GetAnnotations()
	case "CronJob":
		rec.Annotations, _, _ = unstructured.NestedStringMap(obj.Object, "spec", "jobTemplate", "spec", "template", "metadata", "annotations")
	default:
		rec.Annotations, _, _ = unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "annotations")
	}
	defer func() {
		i.mu.Lock()
		i.records = append(i.records, rec)
		i.mu.Unlock()
	}()
	if req.Operation != admissionv1.Create || (req.Kind.Kind != "Pod" && req.Kind.Kind != "Service") || req.Kind.Group != "" {
		return resp, nil
	}
	cfg, err := i.readConfig(ctx)
	if err != nil {
		rec.Skipped = err.Error()
		return nil, err
	}
	nsAnn, err := i.cluster.NamespaceAnnotations(ctx, req.Namespace)
	if err != nil {
		rec.Skipped = err.Error()
		return nil, fmt.Errorf("namespace %s: %w", req.Namespace, err)
	}
	mutated := obj.DeepCopy()
	if req.Kind.Kind == "Service" {
		annotateServiceOpaquePorts(mutated, nsAnn, cfg)
	} else {
		res := decide(obj, nsAnn, cfg)
		rec.Skipped = res.skip
		if res.skip == "" {
			rec.Injected, rec.Native = true, res.native
			if err := inject(mutated, nsAnn, cfg, res); err != nil {
				return nil, err
			}
		} else {
			annotatePodOpaquePorts(mutated, nsAnn, cfg)
		}
	}
	patch, err := diff(req.Object.Raw, mutated)
	if err != nil {
		return nil, err
	}
	if patch != nil {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	return resp, nil
}

// config is what the stand-in reads of linkerd-config's values and the
// trust roots.
type config struct {
	LinkerdVersion string `yaml:"linkerdVersion"`
	Proxy          struct {
		NativeSidecar bool   `yaml:"nativeSidecar"`
		OpaquePorts   string `yaml:"opaquePorts"`
		Image         struct {
			Version string `yaml:"version"`
		} `yaml:"image"`
	} `yaml:"proxy"`
	ProxyInit struct {
		IgnoreInboundPorts  string `yaml:"ignoreInboundPorts"`
		IgnoreOutboundPorts string `yaml:"ignoreOutboundPorts"`
	} `yaml:"proxyInit"`
	Identity struct {
		ServiceAccountTokenProjection bool `yaml:"serviceAccountTokenProjection"`
	} `yaml:"identity"`
	trustRoots string
}

// readConfig reads linkerd-config and the trust roots, as the real
// injector does on each request (it fails without them).
func (i *Injector) readConfig(ctx context.Context) (*config, error) {
	data, err := i.cluster.ConfigMapData(ctx, i.linkerdNamespace, ConfigMapName)
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", i.linkerdNamespace, ConfigMapName, err)
	}
	values, ok := data["values"]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s has no key values", i.linkerdNamespace, ConfigMapName)
	}
	cfg, err := parseValues([]byte(values))
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", i.linkerdNamespace, ConfigMapName, err)
	}
	roots, err := i.cluster.ConfigMapData(ctx, i.linkerdNamespace, TrustRootsName)
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", i.linkerdNamespace, TrustRootsName, err)
	}
	cfg.trustRoots = roots[TrustRootsKey]
	return cfg, nil
}

func parseValues(values []byte) (*config, error) {
	cfg := &config{}
	if err := yaml.Unmarshal(values, cfg); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return cfg, nil
}

// decision is what the stand-in decided for a Pod.
type decision struct {
	skip    string // why it is not injected; "" = injected
	native  bool
	ingress bool
}

// Why a Pod is skipped (the real injector's log and event words).
const (
	SkipHostNetwork     = "hostNetwork is enabled"
	SkipAlreadyInjected = "pod has a sidecar injected already"
	SkipNotEnabled      = "neither the namespace nor the pod has the annotation \"linkerd.io/inject:enabled\""
	SkipInvalidValue    = "invalid value for annotation \"linkerd.io/inject\""
	SkipNoToken         = "automountServiceAccountToken set to \"false\", with Values.identity.serviceAccountTokenProjection set to \"false\""
)

func decide(pod *unstructured.Unstructured, nsAnn map[string]string, cfg *config) decision {
	ann := pod.GetAnnotations()
	if host, _, _ := unstructured.NestedBool(pod.Object, "spec", "hostNetwork"); host {
		return decision{skip: SkipHostNetwork}
	}
	for _, list := range []string{"containers", "initContainers"} {
		cs, _, _ := unstructured.NestedSlice(pod.Object, "spec", list)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok && m["name"] == ProxyContainerName {
				return decision{skip: SkipAlreadyInjected}
			}
		}
	}
	value, ok := ann[InjectAnnotation]
	if !ok {
		value, ok = nsAnn[InjectAnnotation]
	}
	var d decision
	switch {
	case !ok, value == "disabled":
		return decision{skip: SkipNotEnabled}
	case value == "ingress":
		d.ingress = true
	case value == "enabled":
	default:
		return decision{skip: SkipInvalidValue}
	}
	if auto, found, _ := unstructured.NestedBool(pod.Object, "spec", "automountServiceAccountToken"); found && !auto && !cfg.Identity.ServiceAccountTokenProjection {
		return decision{skip: SkipNoToken}
	}
	d.native = cfg.Proxy.NativeSidecar
	for _, key := range []string{NativeSidecarGA, NativeSidecarBeta, NativeSidecarAlpha} {
		if v, ok := configAnnotation(key, ann, nsAnn); ok {
			if b, err := strconv.ParseBool(v); err == nil {
				d.native = b
			}
			break
		}
	}
	return d
}

// configAnnotation is the pod's value of a config annotation, else its
// namespace's.
func configAnnotation(key string, pod, ns map[string]string) (string, bool) {
	if v, ok := pod[key]; ok {
		return v, true
	}
	v, ok := ns[key]
	return v, ok
}

// isConfigAnnotation tells the annotations a namespace passes on to its pods.
func isConfigAnnotation(key string) bool {
	for _, p := range []string{"config.linkerd.io/", "config.alpha.linkerd.io/", "config.beta.linkerd.io/"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// inject adds linkerd-init and the proxy to pod.
func inject(pod *unstructured.Unstructured, nsAnn map[string]string, cfg *config, d decision) error {
	ann := pod.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	for k, v := range nsAnn {
		if _, has := ann[k]; !has && isConfigAnnotation(k) {
			ann[k] = v
		}
	}
	if _, has := ann[OpaquePortsAnnotation]; !has {
		if ports := declaredDefaultPorts(pod, cfg); ports != "" {
			ann[OpaquePortsAnnotation] = ports
		}
	}
	version := cfg.Proxy.Image.Version
	if version == "" {
		version = cfg.LinkerdVersion
	}
	sum := sha256.Sum256([]byte(cfg.trustRoots))
	ann[ProxyVersionAnnotation] = version
	ann[CreatedByAnnotation] = standInCreatedByVersion
	ann[TrustRootSHAAnnotation] = hex.EncodeToString(sum[:])
	pod.SetAnnotations(ann)

	outbound := cfg.ProxyInit.IgnoreOutboundPorts
	if v, ok := ann[SkipOutboundAnnotation]; ok {
		outbound = v
	}
	inbound := "4190,4191"
	if cfg.ProxyInit.IgnoreInboundPorts != "" {
		inbound += "," + cfg.ProxyInit.IgnoreInboundPorts
	}
	initC := map[string]any{
		"name":  InitContainerName,
		"image": standInImageRegistry + "proxy-init:" + version,
		"args": []any{
			"--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140", "--proxy-uid", "2102",
			"--inbound-ports-to-ignore", inbound, "--outbound-ports-to-ignore", outbound,
		},
	}
	env := []any{}
	if d.ingress {
		env = append(env, map[string]any{"name": EnvIngressMode, "value": "true"})
	}
	if v := ann[OpaquePortsAnnotation]; v != "" {
		env = append(env, map[string]any{"name": EnvOpaquePorts, "value": v})
	}
	proxy := map[string]any{
		"name":  ProxyContainerName,
		"image": standInImageRegistry + "proxy:" + version,
		"ports": []any{
			map[string]any{"name": "linkerd-proxy", "containerPort": int64(4143)},
			map[string]any{"name": "linkerd-admin", "containerPort": int64(4191)},
		},
	}
	if len(env) > 0 {
		proxy["env"] = env
	}
	if cfg.Identity.ServiceAccountTokenProjection {
		// On a real apiserver the ServiceAccount admission plugin sets
		// serviceAccountName (default: "default") before any webhook, so
		// the real injector never sees a pod without one. The e2e
		// harness's apiserver runs without that plugin (envtest disables
		// it), and then refuses the projected token ("must not be
		// specified when serviceAccountName is not set"): the stand-in
		// does the plugin's part here, and only this.
		if name, _, _ := unstructured.NestedString(pod.Object, "spec", "serviceAccountName"); name == "" {
			if err := unstructured.SetNestedField(pod.Object, "default", "spec", "serviceAccountName"); err != nil {
				return fmt.Errorf("set serviceAccountName: %w", err)
			}
		}
		proxy["volumeMounts"] = []any{map[string]any{"name": TokenVolumeName, "mountPath": "/var/run/secrets/tokens"}}
		vols, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
		vols = append(vols, map[string]any{
			"name": TokenVolumeName,
			"projected": map[string]any{"sources": []any{map[string]any{"serviceAccountToken": map[string]any{
				"audience": "identity.l5d.io", "expirationSeconds": int64(86400), "path": TokenVolumeName,
			}}}},
		})
		if err := unstructured.SetNestedSlice(pod.Object, vols, "spec", "volumes"); err != nil {
			return fmt.Errorf("add token volume: %w", err)
		}
	}
	inits, _, _ := unstructured.NestedSlice(pod.Object, "spec", "initContainers")
	containers, _, _ := unstructured.NestedSlice(pod.Object, "spec", "containers")
	if d.native {
		proxy["restartPolicy"] = "Always"
		inits = append([]any{initC, proxy}, inits...)
	} else {
		proxy["lifecycle"] = map[string]any{"postStart": map[string]any{"exec": map[string]any{
			"command": []any{"/usr/lib/linkerd/linkerd-await", "--timeout=2m", "--port=4191"},
		}}}
		inits = append([]any{initC}, inits...)
		containers = append([]any{proxy}, containers...)
	}
	if err := unstructured.SetNestedSlice(pod.Object, inits, "spec", "initContainers"); err != nil {
		return fmt.Errorf("add init containers: %w", err)
	}
	if err := unstructured.SetNestedSlice(pod.Object, containers, "spec", "containers"); err != nil {
		return fmt.Errorf("add proxy container: %w", err)
	}
	return nil
}

// annotatePodOpaquePorts writes the default opaque ports a pod left
// uninjected declares, unless it (or its namespace) says otherwise.
func annotatePodOpaquePorts(pod *unstructured.Unstructured, nsAnn map[string]string, cfg *config) {
	ann := pod.GetAnnotations()
	if _, has := ann[OpaquePortsAnnotation]; has {
		return
	}
	v, ok := nsAnn[OpaquePortsAnnotation]
	if !ok {
		v = declaredDefaultPorts(pod, cfg)
	}
	if v == "" {
		return
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[OpaquePortsAnnotation] = v
	pod.SetAnnotations(ann)
}

// annotateServiceOpaquePorts is the injector's Service mutation.
func annotateServiceOpaquePorts(svc *unstructured.Unstructured, nsAnn map[string]string, cfg *config) {
	ann := svc.GetAnnotations()
	if _, has := ann[OpaquePortsAnnotation]; has {
		return
	}
	v, ok := nsAnn[OpaquePortsAnnotation]
	if !ok {
		// A port is opaque when the port number it targets is in the
		// default list; what is written is the Service port. A named
		// targetPort is not resolved: such ports get nothing.
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		var nums []int64
		for _, p := range ports {
			m, _ := p.(map[string]any)
			port, ok := portNumber(m["port"])
			if !ok {
				continue
			}
			target := port
			if t, set := m["targetPort"]; set {
				if target, ok = portNumber(t); !ok {
					continue
				}
			}
			if inDefaultList([]int64{target}, cfg.Proxy.OpaquePorts) != "" {
				nums = append(nums, port)
			}
		}
		v = inDefaultList(nums, "1-65535")
	}
	if v == "" {
		return
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[OpaquePortsAnnotation] = v
	svc.SetAnnotations(ann)
}

// declaredDefaultPorts lists the containerPorts of pod that are in the
// default opaque ports.
func declaredDefaultPorts(pod *unstructured.Unstructured, cfg *config) string {
	var nums []int64
	for _, list := range []string{"containers", "initContainers"} {
		cs, _, _ := unstructured.NestedSlice(pod.Object, "spec", list)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			ports, _ := m["ports"].([]any)
			for _, p := range ports {
				pm, _ := p.(map[string]any)
				if n, ok := portNumber(pm["containerPort"]); ok {
					nums = append(nums, n)
				}
			}
		}
	}
	return inDefaultList(nums, cfg.Proxy.OpaquePorts)
}

// portNumber reads a numeric port (JSON decodes numbers as float64).
func portNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

// inDefaultList returns the ports (sorted, deduplicated, comma-separated)
// that the comma-separated list (ports or lo-hi ranges) covers.
func inDefaultList(ports []int64, list string) string {
	covered := func(p int64) bool {
		for _, item := range strings.Split(list, ",") {
			item = strings.TrimSpace(item)
			lo, hi, isRange := strings.Cut(item, "-")
			l, err1 := strconv.ParseInt(lo, 10, 32)
			h := l
			var err2 error
			if isRange {
				h, err2 = strconv.ParseInt(hi, 10, 32)
			}
			if err1 == nil && err2 == nil && l <= p && p <= h {
				return true
			}
		}
		return false
	}
	seen := map[int64]bool{}
	var out []int64
	for _, p := range ports {
		if !seen[p] && covered(p) {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	s := make([]string, len(out))
	for i, p := range out {
		s[i] = strconv.FormatInt(p, 10)
	}
	return strings.Join(s, ",")
}

// diff is the JSON patch from raw to obj; nil when they are equal.
func diff(raw []byte, obj *unstructured.Unstructured) ([]byte, error) {
	out, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("encode mutated object: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(raw, out)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return json.Marshal(ops)
}

// Registration is the stand-in's MutatingWebhookConfiguration: Linkerd's
// name, reinvocationPolicy IfNeeded, Linkerd's namespace exclusions
// (kube-system, cert-manager, label config.linkerd.io/admission-webhooks:
// disabled) on top of namespaceSelector (the test's namespaces), and,
// besides the Pods and Services the real injector handles, the workload
// kinds, only so that the stand-in can record what our webhook made of
// them.
func Registration(url string, caBundle []byte, namespaceSelector *metav1.LabelSelector) *admissionregistrationv1.MutatingWebhookConfiguration {
	failure := admissionregistrationv1.Fail
	sideEffects := admissionregistrationv1.SideEffectClassNone
	reinvocation := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := int32(10)
	scope := admissionregistrationv1.NamespacedScope
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope,
			},
		}
	}
	sel := &metav1.LabelSelector{}
	if namespaceSelector != nil {
		sel = namespaceSelector.DeepCopy()
	}
	sel.MatchExpressions = append(sel.MatchExpressions,
		metav1.LabelSelectorRequirement{Key: AdmissionWebhooksLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"disabled"}},
		metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "cert-manager"}},
	)
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    WebhookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule("", "pods", "services"), rule("apps", "deployments", "statefulsets", "daemonsets"), rule("batch", "jobs", "cronjobs")},
			FailurePolicy:           &failure,
			NamespaceSelector:       sel,
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &reinvocation,
		}},
	}
}
