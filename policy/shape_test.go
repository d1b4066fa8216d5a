package policy

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestMalformedShapesAreShapeErrorsWithTheirPath(t *testing.T) {
	cases := []struct {
		name string
		json string
		want ShapeError
	}{
		{"a deployment whose spec is a list", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":[]}`,
			ShapeError{"spec", "an object", "a list"}},
		{"a pod whose annotations are a string", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":"x"}}`,
			ShapeError{"metadata.annotations", "an object", "a string"}},
		{"an annotation value that is a number", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"a":1}}}`,
			ShapeError{"metadata.annotations[a]", "a string", "a number"}},
		{"a job whose template is a string", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":"oops"}}`,
			ShapeError{"spec.template", "an object", "a string"}},
		{"a cronjob whose job template metadata is a list", `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"jobTemplate":{"metadata":[]}}}`,
			ShapeError{"spec.jobTemplate.metadata", "an object", "a list"}},
		{"an elasticsearch node set whose pod template metadata is a list", `{"apiVersion":"elasticsearch.k8s.elastic.co/v1","kind":"Elasticsearch","metadata":{"name":"es"},"spec":{"nodeSets":[{"name":"a"},{"name":"b","podTemplate":{"metadata":[]}}]}}`,
			ShapeError{"spec.nodeSets[1].podTemplate.metadata", "an object", "a list"}},
		{"an elasticsearch whose node sets are an object", `{"apiVersion":"elasticsearch.k8s.elastic.co/v1","kind":"Elasticsearch","metadata":{"name":"es"},"spec":{"nodeSets":{}}}`,
			ShapeError{"spec.nodeSets", "a list", "an object"}},
		{"a node set that is a number", `{"apiVersion":"elasticsearch.k8s.elastic.co/v1","kind":"Elasticsearch","metadata":{"name":"es"},"spec":{"nodeSets":[1]}}`,
			ShapeError{"spec.nodeSets[0]", "an object", "a number"}},
		{"a kibana whose pod template is a list", `{"apiVersion":"kibana.k8s.elastic.co/v1","kind":"Kibana","metadata":{"name":"k"},"spec":{"podTemplate":[]}}`,
			ShapeError{"spec.podTemplate", "an object", "a list"}},
		{"containers that are an object", `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},"spec":{"template":{"spec":{"containers":{}}}}}`,
			ShapeError{"spec.template.spec.containers", "a list", "an object"}},
		{"a container that is a string", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"initContainers":["c"]}}`,
			ShapeError{"spec.initContainers[0]", "an object", "a string"}},
		{"container ports that are a string", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","ports":"3306"}]}}`,
			ShapeError{"spec.containers[0].ports", "a list", "a string"}},
		{"service ports that are an object", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":{"port":3306}}}`,
			ShapeError{"spec.ports", "a list", "an object"}},
		{"owner references that are an object", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","ownerReferences":{}}}`,
			ShapeError{"metadata.ownerReferences", "a list", "an object"}},
		{"labels of a template that are a list", `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"d"},"spec":{"template":{"metadata":{"labels":["a"]}}}}`,
			ShapeError{"spec.template.metadata.labels", "an object", "a list"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := &unstructured.Unstructured{}
			if err := in.UnmarshalJSON([]byte(c.json)); err != nil {
				t.Fatal(err)
			}
			for _, call := range []struct {
				name string
				run  func() error
			}{
				{"Evaluate", func() error { _, err := Evaluate(in, Context{Namespace: "default"}, nil); return err }},
				{"Admit", func() error { _, err := Admit(in, Context{Namespace: "default"}, nil); return err }},
			} {
				err := call.run()
				var se *ShapeError
				if !errors.As(err, &se) {
					t.Fatalf("%s: error %v, want a *ShapeError", call.name, err)
				}
				if *se != c.want {
					t.Errorf("%s: %+v, want %+v", call.name, *se, c.want)
				}
				if !strings.Contains(err.Error(), c.want.Path+": expected "+c.want.Want) {
					t.Errorf("%s: message %q does not name the path", call.name, err)
				}
			}
		})
	}
}

func TestNullAndAbsentValuesAreNotShapeErrors(t *testing.T) {
	for _, j := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":null},"spec":null}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":null}}`,
		`{"apiVersion":"elasticsearch.k8s.elastic.co/v1","kind":"Elasticsearch","metadata":{"name":"es"},"spec":{"nodeSets":[{"name":"a","podTemplate":null}]}}`,
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}`,
	} {
		in := &unstructured.Unstructured{}
		if err := in.UnmarshalJSON([]byte(j)); err != nil {
			t.Fatal(err)
		}
		if _, err := Evaluate(in, Context{Namespace: "default"}, nil); err != nil {
			t.Errorf("%s: %v", j, err)
		}
	}
}

func TestAdmitInModeOffDoesNotEvaluateMalformedObjects(t *testing.T) {
	in := &unstructured.Unstructured{}
	if err := in.UnmarshalJSON([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":[]}`)); err != nil {
		t.Fatal(err)
	}
	a, err := Admit(in, Context{Namespace: "kube-system"}, nil)
	if err != nil || a.Mode != ModeOff || a.ModeReason != ModeReasonExcludedNamespace {
		t.Fatalf("excluded namespace: %+v, %v", a, err)
	}
}
