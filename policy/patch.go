package policy

import (
	"reflect"
	"slices"
	"strconv"

	"gomodules.xyz/jsonpatch/v2"
)

// Diff returns the JSON patch (RFC 6902) that turns orig into mutated.
//
// It is built for Decision.Object, which shares every subtree Evaluate did
// not change with the evaluated object: maps that are the same map and
// lists with the same backing array and length are skipped without being
// read, so the cost is that of the changed paths only and nothing the
// engine did not touch can be lost or re-encoded. It is correct for any
// two decoded JSON documents, only slower when they share nothing.
//
// Keys only in mutated are added, keys only in orig removed, two maps are
// compared key by key, two lists of the same length item by item, and any
// other difference replaces the value whole. Operations come in sorted key
// order, so the patch is deterministic. Neither argument is modified; the
// patch's values are shared with mutated.
func Diff(orig, mutated map[string]any) []jsonpatch.JsonPatchOperation {
	if mapID(orig) == mapID(mutated) {
		return nil
	}
	var buf [128]byte
	ops := diffMap(make([]jsonpatch.JsonPatchOperation, 0, 4), buf[:0], orig, mutated)
	if len(ops) == 0 {
		return nil
	}
	return ops
}

// The path of the value being compared is built in one buffer, segment by
// segment; a string is made of it only for an operation.

func diffValue(ops []jsonpatch.JsonPatchOperation, path []byte, a, b any) []jsonpatch.JsonPatchOperation {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok && av != nil && bv != nil {
			return diffMap(ops, path, av, bv)
		}
	case []any:
		if bv, ok := b.([]any); ok && len(av) == len(bv) {
			if len(av) == 0 || sliceID(av) == sliceID(bv) {
				return ops
			}
			for i := range av {
				ops = diffValue(ops, strconv.AppendInt(append(path, '/'), int64(i), 10), av[i], bv[i])
			}
			return ops
		}
	}
	if sameScalar(a, b) {
		return ops
	}
	return append(ops, jsonpatch.JsonPatchOperation{Operation: "replace", Path: string(path), Value: b})
}

func diffMap(ops []jsonpatch.JsonPatchOperation, path []byte, a, b map[string]any) []jsonpatch.JsonPatchOperation {
	if mapID(a) == mapID(b) {
		return ops
	}
	// Only the keys that differ are sorted: a changed annotations map may
	// hold hundreds of keys, of which Evaluate changed two or three.
	var buf [8]string
	keys := buf[:0]
	for k, bv := range b {
		if av, ok := a[k]; !ok || !shared(av, bv) {
			keys = append(keys, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		av, inA := a[k]
		bv, inB := b[k]
		child := appendPointerToken(append(path, '/'), k)
		switch {
		case !inA:
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "add", Path: string(child), Value: bv})
		case !inB:
			ops = append(ops, jsonpatch.JsonPatchOperation{Operation: "remove", Path: string(child)})
		default:
			ops = diffValue(ops, child, av, bv)
		}
	}
	return ops
}

// shared reports, without building a path, the common case of a subtree
// Evaluate did not touch.
func shared(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		return ok && av != nil && mapID(av) == mapID(bv)
	case []any:
		bv, ok := b.([]any)
		return ok && len(av) == len(bv) && (len(av) == 0 || sliceID(av) == sliceID(bv))
	}
	return sameScalar(a, b)
}

// sameScalar compares JSON leaves; values of other types (maps, lists)
// that reach it differ in type or in nil-ness, which DeepEqual settles.
func sameScalar(a, b any) bool {
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case int64:
		bv, ok := b.(int64)
		return ok && av == bv
	case float64:
		bv, ok := b.(float64)
		return ok && av == bv
	case nil:
		return b == nil
	}
	return reflect.DeepEqual(a, b)
}

// appendPointerToken appends a key escaped for a JSON pointer (RFC 6901):
// annotation keys such as linkerd.io/inject contain '/'.
func appendPointerToken(b []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		switch c := k[i]; c {
		case '~':
			b = append(b, '~', '0')
		case '/':
			b = append(b, '~', '1')
		default:
			b = append(b, c)
		}
	}
	return b
}
