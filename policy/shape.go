package policy

import "fmt"

// ShapeError is an object of a known kind with a value of the wrong JSON
// type where the kind's schema says object, list or string, such as
// `spec: []` or `metadata.annotations: "x"`. It is the sender's mistake:
// the webhook answers it with HTTP 400, check with a one-line error.
type ShapeError struct {
	// Path is where, as people write it: spec.nodeSets[3].podTemplate.metadata.
	Path string
	// Want is what the schema says ("an object", "a list", "a string"),
	// Got what was there ("a list", "a string", "a number", ...).
	Want, Got string
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("%s: expected %s, got %s", e.Path, e.Want, e.Got)
}

func shapeErr(path []any, want string, got any) *ShapeError {
	return &ShapeError{Path: displayPath(path), Want: want, Got: typeName(got)}
}

const (
	wantObject = "an object"
	wantList   = "a list"
	wantString = "a string"
)

// checkObjectShape verifies, in one pass linear in the object's size, that every
// value the rules read or write has the type the kind's schema gives it.
// Absent and null values are fine (they mean "not set"). It returns the
// first problem, in a fixed order.
func checkObjectShape(obj map[string]any, k *kind) error {
	if err := checkMetadata(obj, []any{"metadata"}); err != nil {
		return err
	}
	if _, err := objectAt(obj, []any{"spec"}); err != nil {
		return err
	}
	if k.name == "Service" {
		return checkObjectList(obj, []any{"spec", "ports"})
	}
	for _, m := range k.metadata[1:] {
		if err := checkMetadata(obj, m); err != nil {
			return err
		}
	}
	switch {
	case k.self:
		return checkPodTemplate(obj, nil)
	case k.template != nil:
		return checkPodTemplate(obj, k.template)
	case k.list != nil:
		v, err := valueAt(obj, k.list, wantList)
		if err != nil {
			return err
		}
		items, _ := v.([]any)
		var buf pathBuf
		for i, it := range items {
			p := append(appendPath(&buf, k.list, i), k.item...)
			if _, ok := it.(map[string]any); !ok {
				return shapeErr(p[:len(k.list)+1], wantObject, it)
			}
			if err := checkPodTemplate(obj, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPodTemplate checks a pod template (or a Pod) at path: metadata,
// spec, and the container and port lists the rules read.
func checkPodTemplate(obj map[string]any, path []any) error {
	tm, err := objectAt(obj, path)
	if err != nil || tm == nil {
		return err
	}
	var mdBuf, specBuf, listBuf, cBuf, portsBuf pathBuf
	if err := checkMetadata(obj, appendPath(&mdBuf, path, "metadata")); err != nil {
		return err
	}
	spec, err := objectAt(obj, appendPath(&specBuf, path, "spec"))
	if err != nil || spec == nil {
		return err
	}
	// Segments are interfaces made of constants, so that no segment is
	// boxed (allocated) per call.
	for _, field := range [...]any{"initContainers", "containers"} {
		lp := appendPath(&listBuf, path, "spec", field)
		v, err := valueAt(obj, lp, wantList)
		if err != nil {
			return err
		}
		list, _ := v.([]any)
		for i := range list {
			cp := appendPath(&cBuf, lp, i)
			if _, err := objectAt(obj, cp); err != nil {
				return err
			}
			if err := checkObjectList(obj, appendPath(&portsBuf, cp, "ports")); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkMetadata checks an object's metadata at path: an object whose
// annotations and labels are maps of strings and whose ownerReferences is
// a list of objects.
func checkMetadata(obj map[string]any, path []any) error {
	md, err := objectAt(obj, path)
	if err != nil || md == nil {
		return err
	}
	var buf pathBuf
	for _, f := range [...]any{"annotations", "labels"} {
		m, err := objectAt(obj, appendPath(&buf, path, f))
		if err != nil {
			return err
		}
		for key, v := range m {
			if _, ok := v.(string); !ok && v != nil {
				return &ShapeError{Path: displayPath(path) + "." + f.(string) + "[" + key + "]", Want: wantString, Got: typeName(v)}
			}
		}
	}
	return checkObjectList(obj, appendPath(&buf, path, "ownerReferences"))
}

// checkObjectList checks that the value at path, if any, is a list of objects.
func checkObjectList(obj map[string]any, path []any) error {
	v, err := valueAt(obj, path, wantList)
	if err != nil {
		return err
	}
	list, _ := v.([]any)
	for i, it := range list {
		if _, ok := it.(map[string]any); !ok {
			var buf pathBuf
			return shapeErr(appendPath(&buf, path, i), wantObject, it)
		}
	}
	return nil
}

// objectAt returns the object at path (nil when absent or null), or a
// ShapeError for the first value on the way that is not an object.
func objectAt(obj map[string]any, path []any) (map[string]any, error) {
	v, err := valueAt(obj, path, wantObject)
	m, _ := v.(map[string]any)
	return m, err
}

// valueAt walks path through objects (string segments) and lists (int
// segments); the last value must be what want says, or absent.
func valueAt(obj map[string]any, path []any, want string) (any, error) {
	var cur any = obj
	for i, seg := range path {
		switch s := seg.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, shapeErr(path[:i], wantObject, cur)
			}
			cur = m[s]
		case int:
			l, ok := cur.([]any)
			if !ok {
				return nil, shapeErr(path[:i], wantList, cur)
			}
			if s < 0 || s >= len(l) {
				return nil, nil
			}
			cur = l[s]
		}
		if cur == nil {
			return nil, nil
		}
	}
	switch want {
	case wantObject:
		if _, ok := cur.(map[string]any); !ok {
			return nil, shapeErr(path, want, cur)
		}
	case wantList:
		if _, ok := cur.([]any); !ok {
			return nil, shapeErr(path, want, cur)
		}
	}
	return cur, nil
}

// pathBuf holds a path being checked: paths are only read (and formatted
// into a ShapeError), never kept, so they live on the caller's stack.
type pathBuf [16]any

// appendPath writes path followed by segs into buf and returns it (a longer
// path spills to the heap, correctly).
func appendPath(buf *pathBuf, path []any, segs ...any) []any {
	return append(append(buf[:0], path...), segs...)
}

// extendPath returns a new path: path followed by segs.
func extendPath(path []any, segs ...any) []any {
	out := make([]any, 0, len(path)+len(segs))
	return append(append(out, path...), segs...)
}
