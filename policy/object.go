package policy

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kind describes where a known kind keeps its pod template(s).
type kind struct {
	name string
	// template is the path of the single pod template (nil for Pod, whose
	// template is the object itself, and for kinds without one).
	template []any
	prefix   string // displayPath(template) + "."
	// self: the object is a pod (its own metadata and spec are the template).
	self bool
	// nodeSets: ECK Elasticsearch, one template per spec.nodeSets[i].podTemplate.
	nodeSets bool
	// workload: a top-level controller whose template is only patched when
	// no controller owns the object.
	workload bool
}

// Template paths, shared by every kind value and never modified.
var (
	pathSpecTemplate    = []any{"spec", "template"}
	pathCronJobTemplate = []any{"spec", "jobTemplate", "spec", "template"}
	pathPodTemplate     = []any{"spec", "podTemplate"}
)

// lookupKind finds the engine's knowledge of gvk. Versions are not
// checked for built-in groups: the template sits at the same place in every
// version a manifest may still carry (extensions/v1beta1, batch/v1beta1).
func lookupKind(gvk schema.GroupVersionKind) (kind, bool) {
	switch gvk.Group {
	case "":
		switch gvk.Kind {
		case "Pod":
			return kind{name: "Pod", self: true}, true
		case "Service":
			return kind{name: "Service"}, true
		}
	case "apps", "extensions":
		switch gvk.Kind {
		case "Deployment", "DaemonSet", "ReplicaSet":
			return kind{name: gvk.Kind, template: pathSpecTemplate, prefix: "spec.template.", workload: true}, true
		case "StatefulSet":
			if gvk.Group == "apps" {
				return kind{name: gvk.Kind, template: pathSpecTemplate, prefix: "spec.template.", workload: true}, true
			}
		}
	case "batch":
		switch gvk.Kind {
		case "Job":
			return kind{name: "Job", template: pathSpecTemplate, prefix: "spec.template.", workload: true}, true
		case "CronJob":
			return kind{name: "CronJob", template: pathCronJobTemplate, prefix: "spec.jobTemplate.spec.template.", workload: true}, true
		}
	case "elasticsearch.k8s.elastic.co":
		if gvk.Kind == "Elasticsearch" {
			return kind{name: "Elasticsearch", nodeSets: true, workload: true}, true
		}
	case "kibana.k8s.elastic.co":
		if gvk.Kind == "Kibana" {
			return kind{name: "Kibana", template: pathPodTemplate, prefix: "spec.podTemplate.", workload: true}, true
		}
	}
	return kind{}, false
}

// Supported reports whether the engine knows gvk: Pod, Service,
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and ECK's
// Elasticsearch and Kibana in any version. Other kinds are never changed.
func Supported(gvk schema.GroupVersionKind) bool {
	_, ok := lookupKind(gvk)
	return ok
}

func kindNames() []string {
	return []string{"Pod", "Service", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Elasticsearch", "Kibana"}
}

func knownKind(name string) bool {
	for _, k := range kindNames() {
		if k == name {
			return true
		}
	}
	return false
}

// doc is a copy-on-write view of an object: reads see the latest state,
// writes copy only the maps and lists on the way to what they change, so
// the caller's object is never modified and untouched subtrees are shared.
type doc struct {
	orig  map[string]any
	root  map[string]any
	owned []unsafe.Pointer
}

func newDoc(obj map[string]any) *doc { return &doc{orig: obj, root: obj} }

func (d *doc) changed() bool { return len(d.owned) > 0 }

func (d *doc) isOwned(p unsafe.Pointer) bool {
	for _, o := range d.owned {
		if o == p {
			return true
		}
	}
	return false
}

func mapID(m map[string]any) unsafe.Pointer { return reflect.ValueOf(m).UnsafePointer() }

func sliceID(s []any) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s)) }

func (d *doc) ownMap(m map[string]any) map[string]any {
	if m != nil && d.isOwned(mapID(m)) {
		return m
	}
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	d.owned = append(d.owned, mapID(c))
	return c
}

func (d *doc) ownSlice(s []any) []any {
	if len(s) > 0 && d.isOwned(sliceID(s)) {
		return s
	}
	c := make([]any, len(s))
	copy(c, s)
	if len(c) > 0 {
		d.owned = append(d.owned, sliceID(c))
	}
	return c
}

// pathError is a value of the wrong type where the engine must write.
type pathError struct {
	path string
	got  any
}

func (e *pathError) Error() string {
	return fmt.Sprintf("%s: expected an object, got %s", e.path, typeName(e.got))
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64, int:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// mutableMap returns a map at path that this doc owns, copying what it
// shares with the original on the way and creating missing (or null)
// maps. A list index must exist.
func (d *doc) mutableMap(path ...any) (map[string]any, error) {
	d.root = d.ownMap(d.root)
	var cur any = d.root
	for i, seg := range path {
		switch s := seg.(type) {
		case string:
			m := cur.(map[string]any)
			var next any
			switch child := m[s].(type) {
			case map[string]any:
				next = d.ownMap(child)
			case []any:
				if i+1 < len(path) {
					if _, idx := path[i+1].(int); idx {
						next = d.ownSlice(child)
						break
					}
				}
				return nil, &pathError{path: displayPath(path[:i+1]), got: child}
			case nil:
				next = d.ownMap(nil)
			default:
				return nil, &pathError{path: displayPath(path[:i+1]), got: child}
			}
			m[s] = next
			cur = next
		case int:
			l := cur.([]any)
			if s < 0 || s >= len(l) {
				return nil, fmt.Errorf("%s: no such item", displayPath(path[:i+1]))
			}
			child, ok := l[s].(map[string]any)
			if !ok {
				return nil, &pathError{path: displayPath(path[:i+1]), got: l[s]}
			}
			owned := d.ownMap(child)
			l[s] = owned
			cur = owned
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, &pathError{path: displayPath(path), got: cur}
	}
	return m, nil
}

// get reads the value at path in the current state; nil when absent.
func get(root map[string]any, path ...any) any {
	var cur any = root
	for _, seg := range path {
		switch s := seg.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[s]
		case int:
			l, ok := cur.([]any)
			if !ok || s < 0 || s >= len(l) {
				return nil
			}
			cur = l[s]
		}
	}
	return cur
}

func getMap(root map[string]any, path ...any) map[string]any {
	m, _ := get(root, path...).(map[string]any)
	return m
}

func getString(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

// displayPath renders a path the way people write it:
// spec.nodeSets[1].podTemplate.
func displayPath(path []any) string {
	var b strings.Builder
	for _, seg := range path {
		switch s := seg.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// asInt reads a JSON number (int64 from unstructured, float64 from
// encoding/json) as an int.
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case int:
		return n, true
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	case int32:
		return int(n), true
	}
	return 0, false
}
