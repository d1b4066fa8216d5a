package injector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeCluster answers from maps.
type fakeCluster struct {
	namespaces map[string]map[string]string
	configMaps map[string]map[string]string // "ns/name" → data
}

func (f fakeCluster) NamespaceAnnotations(_ context.Context, ns string) (map[string]string, error) {
	a, ok := f.namespaces[ns]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)
	}
	return a, nil
}

func (f fakeCluster) ConfigMapData(_ context.Context, ns, name string) (map[string]string, error) {
	d, ok := f.configMaps[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	return d, nil
}

// values220 is linkerd-config's values as the 2.20 charts render them
// (the keys the stand-in reads).
const values220 = `linkerdVersion: edge-26.8.3
proxy:
  nativeSidecar: true
  opaquePorts: 25,587,3306,4444,5432,6379,9300,11211
identity:
  serviceAccountTokenProjection: true
proxyInit:
  ignoreInboundPorts: 4567,4568
  ignoreOutboundPorts: 4567,4568
`

const trustBundle = "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n"

// cluster is a namespace "ns" with annotations nsAnn and linkerd-config
// holding values.
func cluster(values string, nsAnn map[string]string) fakeCluster {
	return fakeCluster{
		namespaces: map[string]map[string]string{"ns": nsAnn},
		configMaps: map[string]map[string]string{
			"linkerd/" + ConfigMapName:  {"values": values},
			"linkerd/" + TrustRootsName: {TrustRootsKey: trustBundle},
		},
	}
}

var enabledNS = map[string]string{InjectAnnotation: "enabled"}

// admit sends obj (YAML-ish JSON) as a CREATE to the stand-in and returns
// the object after its patch, and its record.
func admit(t *testing.T, c Cluster, kind, obj string) (*unstructured.Unstructured, Record) {
	t.Helper()
	inj := New(c, "")
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind},
			Namespace: "ns", Operation: admissionv1.Create,
		},
	}
	review.Request.Object.Raw = []byte(obj)
	body, _ := json.Marshal(review)
	rec := httptest.NewRecorder()
	inj.ServeHTTP(rec, httptest.NewRequest("POST", "/", bytes.NewReader(body)))
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("bad response %s: %v", rec.Body.String(), err)
	}
	if !out.Response.Allowed || out.Response.UID != "1" {
		t.Fatalf("response = %+v", out.Response)
	}
	result := []byte(obj)
	if len(out.Response.Patch) > 0 {
		p, err := jsonpatch.DecodePatch(out.Response.Patch)
		if err != nil {
			t.Fatalf("patch %s: %v", out.Response.Patch, err)
		}
		if result, err = p.Apply(result); err != nil {
			t.Fatalf("apply patch %s: %v", out.Response.Patch, err)
		}
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(result, &u.Object); err != nil {
		t.Fatal(err)
	}
	records := inj.Records()
	if len(records) != 1 {
		t.Fatalf("records = %+v", records)
	}
	return u, records[0]
}

func names(t *testing.T, pod *unstructured.Unstructured, list string) string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(pod.Object, "spec", list)
	var n []string
	for _, c := range cs {
		n = append(n, c.(map[string]any)["name"].(string))
	}
	return strings.Join(n, ",")
}

func container(t *testing.T, pod *unstructured.Unstructured, list, name string) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(pod.Object, "spec", list)
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("no %s %s in %v", list, name, pod.Object["spec"])
	return nil
}

func env(c map[string]any, name string) (string, bool) {
	list, _ := c["env"].([]any)
	for _, e := range list {
		m := e.(map[string]any)
		if m["name"] == name {
			return m["value"].(string), true
		}
	}
	return "", false
}

const plainPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"initContainers":[{"name":"setup","image":"x"}],"containers":[{"name":"app","image":"x"}]}}`

func podWith(annotations string, spec string) string {
	if spec == "" {
		spec = `"containers":[{"name":"app","image":"x"}]`
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{` + annotations + `}},"spec":{` + spec + `}}`
}

func TestProxyIsANativeSidecarByDefault(t *testing.T) {
	pod, rec := admit(t, cluster(values220, enabledNS), "Pod", plainPod)
	if !rec.Injected || !rec.Native {
		t.Fatalf("record %+v, want injected as a native sidecar", rec)
	}
	if got := names(t, pod, "initContainers"); got != "linkerd-init,linkerd-proxy,setup" {
		t.Errorf("init containers %s, want linkerd-init, then linkerd-proxy, then the pod's own", got)
	}
	if got := names(t, pod, "containers"); got != "app" {
		t.Errorf("containers %s, want only the pod's own", got)
	}
	if p := container(t, pod, "initContainers", ProxyContainerName); p["restartPolicy"] != "Always" {
		t.Errorf("native proxy restartPolicy %v, want Always", p["restartPolicy"])
	}
}

func TestClassicSidecar(t *testing.T) {
	values219 := strings.Replace(values220, "nativeSidecar: true", "nativeSidecar: false", 1)
	cases := []struct {
		name, values, annotations string
		native                    bool
	}{
		{"nativeSidecar false in linkerd-config gives the classic sidecar", values219, ``, false},
		{"the pod's GA annotation false gives the classic sidecar", values220, `"` + NativeSidecarGA + `":"false"`, false},
		{"the GA annotation wins over the beta one", values220, `"` + NativeSidecarGA + `":"false","` + NativeSidecarBeta + `":"true"`, false},
		{"the beta annotation wins over the alpha one", values219, `"` + NativeSidecarBeta + `":"true","` + NativeSidecarAlpha + `":"false"`, true},
		{"the alpha annotation is still read", values219, `"` + NativeSidecarAlpha + `":"true"`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod, rec := admit(t, cluster(tc.values, enabledNS), "Pod", podWith(tc.annotations, ""))
			if !rec.Injected || rec.Native != tc.native {
				t.Fatalf("record %+v, want injected, native %v", rec, tc.native)
			}
			if tc.native {
				if got := names(t, pod, "initContainers"); got != "linkerd-init,linkerd-proxy" {
					t.Errorf("init containers %s", got)
				}
				return
			}
			if got := names(t, pod, "containers"); got != "linkerd-proxy,app" {
				t.Errorf("containers %s, want the proxy at containers[0]", got)
			}
			if got := names(t, pod, "initContainers"); got != "linkerd-init" {
				t.Errorf("init containers %s, want linkerd-init only", got)
			}
			p := container(t, pod, "containers", ProxyContainerName)
			if _, ok, _ := unstructured.NestedSlice(p, "lifecycle", "postStart", "exec", "command"); !ok {
				t.Errorf("classic proxy has no postStart hook: %v", p)
			}
		})
	}
	t.Run("the namespace's native-sidecar annotation is read when the pod has none", func(t *testing.T) {
		ns := map[string]string{InjectAnnotation: "enabled", NativeSidecarGA: "false"}
		pod, rec := admit(t, cluster(values220, ns), "Pod", plainPod)
		if !rec.Injected || rec.Native {
			t.Fatalf("record %+v, want the classic sidecar", rec)
		}
		if pod.GetAnnotations()[NativeSidecarGA] != "false" {
			t.Errorf("the namespace's config annotation was not copied onto the pod: %v", pod.GetAnnotations())
		}
	})
}

func TestIngressModeAndSkippedOutboundPorts(t *testing.T) {
	pod, rec := admit(t, cluster(values220, nil), "Pod", podWith(`"linkerd.io/inject":"ingress","`+SkipOutboundAnnotation+`":"443"`, ""))
	if !rec.Injected {
		t.Fatalf("ingress pod in a plain namespace not injected: %+v", rec)
	}
	proxy := container(t, pod, "initContainers", ProxyContainerName)
	if v, ok := env(proxy, EnvIngressMode); !ok || v != "true" {
		t.Errorf("proxy env %s = %q (set %v), want true", EnvIngressMode, v, ok)
	}
	args, _, _ := unstructured.NestedStringSlice(container(t, pod, "initContainers", InitContainerName), "args")
	if got := strings.Join(args, " "); !strings.Contains(got, "--outbound-ports-to-ignore 443") || strings.Contains(got, "--outbound-ports-to-ignore 4567") {
		t.Errorf("linkerd-init args %q, want --outbound-ports-to-ignore 443 replacing the default", got)
	}

	plain, _ := admit(t, cluster(values220, enabledNS), "Pod", plainPod)
	if _, ok := env(container(t, plain, "initContainers", ProxyContainerName), EnvIngressMode); ok {
		t.Errorf("enabled (not ingress) pod got %s", EnvIngressMode)
	}
	args, _, _ = unstructured.NestedStringSlice(container(t, plain, "initContainers", InitContainerName), "args")
	if got := strings.Join(args, " "); !strings.Contains(got, "--outbound-ports-to-ignore 4567,4568") {
		t.Errorf("linkerd-init args %q, want the default proxyInit.ignoreOutboundPorts", got)
	}
}

func TestPodsTheInjectorSkips(t *testing.T) {
	values219 := strings.Replace(values220, "nativeSidecar: true", "nativeSidecar: false", 1)
	noProjection := strings.Replace(values220, "serviceAccountTokenProjection: true", "serviceAccountTokenProjection: false", 1)
	cases := []struct {
		name, values string
		ns           map[string]string
		pod, skip    string
	}{
		{"a pod disabled by its own annotation", values220, enabledNS, podWith(`"linkerd.io/inject":"disabled"`, ""), SkipNotEnabled},
		{"a pod in a namespace without the annotation", values220, nil, plainPod, SkipNotEnabled},
		{"a host network pod", values220, enabledNS, podWith(``, `"hostNetwork":true,"containers":[{"name":"app","image":"x"}]`), SkipHostNetwork},
		{"an invalid value, yes", values220, nil, podWith(`"linkerd.io/inject":"yes"`, ""), SkipInvalidValue},
		{"an invalid value, enable", values220, nil, podWith(`"linkerd.io/inject":"enable"`, ""), SkipInvalidValue},
		{"a pod that already has the proxy", values219, enabledNS, podWith(``, `"containers":[{"name":"linkerd-proxy","image":"x"},{"name":"app","image":"x"}]`), SkipAlreadyInjected},
		{"a pod that already has the native proxy", values220, enabledNS, podWith(``, `"initContainers":[{"name":"linkerd-proxy","image":"x","restartPolicy":"Always"}],"containers":[{"name":"app","image":"x"}]`), SkipAlreadyInjected},
		{"a pod without a token when projection is off", noProjection, enabledNS, podWith(``, `"automountServiceAccountToken":false,"containers":[{"name":"app","image":"x"}]`), SkipNoToken},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is not injected", func(t *testing.T) {
			pod, rec := admit(t, cluster(tc.values, tc.ns), "Pod", tc.pod)
			if rec.Injected || rec.Skipped != tc.skip {
				t.Fatalf("record injected %v skipped %q, want skipped %q", rec.Injected, rec.Skipped, tc.skip)
			}
			if strings.Contains(names(t, pod, "initContainers"), InitContainerName) {
				t.Errorf("skipped pod got linkerd-init")
			}
		})
	}
}

func TestServiceAccountTokenProjection(t *testing.T) {
	pod, rec := admit(t, cluster(values220, enabledNS), "Pod", podWith(``, `"automountServiceAccountToken":false,"containers":[{"name":"app","image":"x"}]`))
	if !rec.Injected {
		t.Fatalf("with projection a pod without automounted token is injected: %+v", rec)
	}
	vols, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
	var found bool
	for _, v := range vols {
		m := v.(map[string]any)
		if m["name"] == TokenVolumeName {
			_, found, _ = unstructured.NestedSlice(m, "projected", "sources")
		}
	}
	if !found {
		t.Errorf("no projected %s volume: %v", TokenVolumeName, vols)
	}
	if sa, _, _ := unstructured.NestedString(pod.Object, "spec", "serviceAccountName"); sa != "default" {
		t.Errorf("serviceAccountName %q, want default (what the ServiceAccount admission plugin sets before webhooks)", sa)
	}
	pod, _ = admit(t, cluster(values220, enabledNS), "Pod", podWith(``, `"serviceAccountName":"app","containers":[{"name":"app","image":"x"}]`))
	if sa, _, _ := unstructured.NestedString(pod.Object, "spec", "serviceAccountName"); sa != "app" {
		t.Errorf("serviceAccountName %q, want the pod's own app kept", sa)
	}
	noProjection := strings.Replace(values220, "serviceAccountTokenProjection: true", "serviceAccountTokenProjection: false", 1)
	pod, rec = admit(t, cluster(noProjection, enabledNS), "Pod", plainPod)
	if !rec.Injected {
		t.Fatalf("without projection a pod with the automounted token is injected: %+v", rec)
	}
	if vols, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes"); len(vols) != 0 {
		t.Errorf("without projection no token volume is added: %v", vols)
	}
}

func TestInjectedPodsAreAnnotated(t *testing.T) {
	ns := map[string]string{InjectAnnotation: "enabled", "config.linkerd.io/proxy-log-level": "debug", "example.com/other": "x"}
	pod, _ := admit(t, cluster(values220, ns), "Pod", podWith(``, `"containers":[{"name":"db","image":"x","ports":[{"containerPort":3306},{"containerPort":8080}]}]`))
	ann := pod.GetAnnotations()
	sum := sha256.Sum256([]byte(trustBundle))
	want := map[string]string{
		ProxyVersionAnnotation:              "edge-26.8.3",
		TrustRootSHAAnnotation:              hex.EncodeToString(sum[:]),
		OpaquePortsAnnotation:               "3306",
		"config.linkerd.io/proxy-log-level": "debug",
	}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], v)
		}
	}
	if _, ok := ann["example.com/other"]; ok {
		t.Errorf("a namespace annotation that is no Linkerd config was copied")
	}
	if !strings.Contains(ann[CreatedByAnnotation], "stand-in") {
		t.Errorf("created-by %q does not say it is the stand-in", ann[CreatedByAnnotation])
	}
	if v, _ := env(container(t, pod, "initContainers", ProxyContainerName), EnvOpaquePorts); v != "3306" {
		t.Errorf("proxy env %s = %q, want 3306", EnvOpaquePorts, v)
	}
}

func TestOpaquePortsOnPods(t *testing.T) {
	t.Run("a pod's own opaque-ports is kept and given to the proxy", func(t *testing.T) {
		pod, _ := admit(t, cluster(values220, enabledNS), "Pod", podWith(`"`+OpaquePortsAnnotation+`":"4406"`, `"containers":[{"name":"db","image":"x","ports":[{"containerPort":3306}]}]`))
		if got := pod.GetAnnotations()[OpaquePortsAnnotation]; got != "4406" {
			t.Errorf("opaque-ports %q, want the pod's 4406 kept", got)
		}
		if v, _ := env(container(t, pod, "initContainers", ProxyContainerName), EnvOpaquePorts); v != "4406" {
			t.Errorf("proxy env %s = %q, want 4406", EnvOpaquePorts, v)
		}
	})
	t.Run("a disabled pod declaring a default opaque port still gets the annotation", func(t *testing.T) {
		pod, rec := admit(t, cluster(values220, enabledNS), "Pod", podWith(`"linkerd.io/inject":"disabled"`, `"containers":[{"name":"db","image":"x","ports":[{"containerPort":5432}]}]`))
		if rec.Injected {
			t.Fatal("injected")
		}
		if got := pod.GetAnnotations()[OpaquePortsAnnotation]; got != "5432" {
			t.Errorf("opaque-ports %q, want 5432", got)
		}
	})
	t.Run("a port outside the default list is not made opaque", func(t *testing.T) {
		pod, _ := admit(t, cluster(values220, enabledNS), "Pod", podWith(``, `"containers":[{"name":"db","image":"x","ports":[{"containerPort":4406,"name":"mysql"}]}]`))
		if got, ok := pod.GetAnnotations()[OpaquePortsAnnotation]; ok {
			t.Errorf("opaque-ports %q for 4406, which only its name reveals", got)
		}
	})
}

func TestServices(t *testing.T) {
	svc := func(annotations, ports string) string {
		return `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","annotations":{` + annotations + `}},"spec":{"ports":[` + ports + `]}}`
	}
	cases := []struct {
		name, svc string
		ns        map[string]string
		want      string // "" = no annotation
	}{
		{"port 80 to targetPort 5432 gets the Service port 80", svc(``, `{"port":80,"targetPort":5432}`), nil, "80"},
		{"a default port with a named targetPort gets nothing", svc(``, `{"port":3306,"targetPort":"mysql"}`), nil, ""},
		{"a default port to a non-default targetPort gets nothing", svc(``, `{"port":5432,"targetPort":9091}`), nil, ""},
		{"a default port in a namespace without inject gets it", svc(``, `{"port":25},{"port":587}`), nil, "25,587"},
		{"an existing annotation is left alone", svc(`"`+OpaquePortsAnnotation+`":"9999"`, `{"port":3306}`), nil, "9999"},
		{"the namespace's annotation is inherited", svc(``, `{"port":3306}`), map[string]string{OpaquePortsAnnotation: "4406"}, "4406"},
		{"a named non-default port gets nothing", svc(``, `{"name":"mysql","port":4406,"targetPort":"mysql"}`), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, rec := admit(t, cluster(values220, tc.ns), "Service", tc.svc)
			got, ok := out.GetAnnotations()[OpaquePortsAnnotation]
			if tc.want == "" && ok {
				t.Errorf("opaque-ports %q, want none", got)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("opaque-ports %q, want %q", got, tc.want)
			}
			if rec.Injected {
				t.Errorf("a Service is never injected")
			}
		})
	}
}

func TestConfigIsReadOnEveryRequest(t *testing.T) {
	c := cluster(values220, enabledNS)
	inj := New(c, "")
	send := func() Record {
		review := admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "ns", Operation: admissionv1.Create,
		}}
		review.Request.Object.Raw = []byte(plainPod)
		body, _ := json.Marshal(review)
		inj.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", bytes.NewReader(body)))
		r := inj.Records()
		return r[len(r)-1]
	}
	if r := send(); !r.Native {
		t.Fatalf("first request not native: %+v", r)
	}
	c.configMaps["linkerd/"+ConfigMapName]["values"] = strings.Replace(values220, "nativeSidecar: true", "nativeSidecar: false", 1)
	if r := send(); !r.Injected || r.Native {
		t.Errorf("after the ConfigMap changed: %+v, want the classic sidecar", r)
	}
	delete(c.configMaps, "linkerd/"+ConfigMapName)
	if r := send(); r.Injected || !strings.Contains(r.Skipped, "linkerd-config") {
		t.Errorf("without linkerd-config: %+v, want no injection and the reason", r)
	}
}

func TestWorkloadsAreRecordedNotMutated(t *testing.T) {
	job := `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"metadata":{"annotations":{"linkerd.io/inject":"disabled"}},"spec":{"containers":[{"name":"c","image":"x","ports":[{"containerPort":3306}]}]}}}}`
	out, rec := admit(t, cluster(values220, enabledNS), "Job", job)
	if rec.Annotations[InjectAnnotation] != "disabled" || rec.Injected {
		t.Errorf("record %+v", rec)
	}
	if _, ok := out.GetAnnotations()[OpaquePortsAnnotation]; ok {
		t.Errorf("the stand-in mutated a Job")
	}
}

func TestRegistrationKeepsLinkerdsNamespaceExclusions(t *testing.T) {
	reg := Registration("https://127.0.0.1:1/", []byte("ca"), &metav1.LabelSelector{MatchLabels: map[string]string{"t": "1"}})
	sel := reg.Webhooks[0].NamespaceSelector
	if sel.MatchLabels["t"] != "1" || len(sel.MatchExpressions) != 2 {
		t.Fatalf("selector %+v", sel)
	}
	if reg.Name != ConfigurationName || *reg.Webhooks[0].ReinvocationPolicy != "IfNeeded" {
		t.Errorf("registration %+v", reg)
	}
}
