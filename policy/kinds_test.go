package policy

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestKindsTableIsWhatSupportedAccepts(t *testing.T) {
	for _, k := range Kinds() {
		for _, g := range append([]string{k.Group}, k.LegacyGroups...) {
			gvk := schema.GroupVersionKind{Group: g, Version: "v1", Kind: k.Kind}
			if !Supported(gvk) {
				t.Errorf("%v is in Kinds() but not Supported", gvk)
			}
		}
		if k.Resource == "" || len(k.Versions) == 0 {
			t.Errorf("%s: resource %q, versions %v: both are needed for a webhook rule", k.Kind, k.Resource, k.Versions)
		}
	}
	if Supported(schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "StatefulSet"}) {
		t.Error("StatefulSet never was in extensions")
	}
}

func TestKindsReturnsACopyTheCallerMayModify(t *testing.T) {
	a := Kinds()
	a[0].Templates[0] = "spec.broken"
	a[2].Versions[0] = "v0"
	b := Kinds()
	if b[0].Templates[0] != "" || b[2].Versions[0] != "v1" {
		t.Fatalf("Kinds() shares its table: %+v %+v", b[0], b[2])
	}
}

func TestTemplatePathsOfEveryKind(t *testing.T) {
	want := map[string]string{
		"Pod": "", "Deployment": "spec.template", "StatefulSet": "spec.template", "DaemonSet": "spec.template",
		"ReplicaSet": "spec.template", "Job": "spec.template", "CronJob": "spec.jobTemplate.spec.template",
		"Elasticsearch": "spec.nodeSets[*].podTemplate", "Kibana": "spec.podTemplate",
	}
	for _, k := range Kinds() {
		w, has := want[k.Kind]
		switch {
		case !has && len(k.Templates) != 0:
			t.Errorf("%s: templates %q, want none", k.Kind, k.Templates)
		case has && (len(k.Templates) != 1 || k.Templates[0] != w):
			t.Errorf("%s: templates %q, want [%q]", k.Kind, k.Templates, w)
		}
	}
	if got := kinds[groupKind{"batch", "CronJob"}].metadata; len(got) != 2 || displayPath(got[1]) != "spec.jobTemplate.metadata" {
		t.Errorf("CronJob metadata paths %v, want its own and spec.jobTemplate.metadata", got)
	}
}
