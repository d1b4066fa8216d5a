package policy

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unsafe"
)

// doc is a copy-on-write view of an object: reads see the latest state,
// writes copy only the maps and lists on the way to what they change, so
// the caller's object is never modified and untouched subtrees are shared.
type doc struct {
	orig map[string]any
	root map[string]any
	// The maps and lists this doc made (by identity), which it may write
	// in place: the first few in an array (an evaluation usually makes
	// five or six), the rest in a set, so that ownership is O(1) however
	// many it made (an Elasticsearch with 40,000 node sets makes 120,000).
	few   [8]unsafe.Pointer
	nfew  int
	owned map[unsafe.Pointer]struct{}
}

func (d *doc) isOwned(p unsafe.Pointer) bool {
	for _, q := range d.few[:d.nfew] {
		if q == p {
			return true
		}
	}
	_, ok := d.owned[p]
	return ok
}

func (d *doc) own(p unsafe.Pointer) {
	if d.nfew < len(d.few) {
		d.few[d.nfew] = p
		d.nfew++
		return
	}
	if d.owned == nil {
		d.owned = make(map[unsafe.Pointer]struct{}, 8)
	}
	d.owned[p] = struct{}{}
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
	d.own(mapID(c))
	return c
}

func (d *doc) ownSlice(s []any) []any {
	if len(s) > 0 && d.isOwned(sliceID(s)) {
		return s
	}
	c := make([]any, len(s))
	copy(c, s)
	if len(c) > 0 {
		d.own(sliceID(c))
	}
	return c
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
				return nil, shapeErr(path[:i+1], wantObject, child)
			case nil:
				next = d.ownMap(nil)
			default:
				return nil, shapeErr(path[:i+1], wantObject, child)
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
				return nil, shapeErr(path[:i+1], wantObject, l[s])
			}
			owned := d.ownMap(child)
			l[s] = owned
			cur = owned
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, shapeErr(path, wantObject, cur)
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
