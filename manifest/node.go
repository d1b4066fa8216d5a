package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	yaml "go.yaml.in/yaml/v3"
)

// maxNodes bounds alias expansion ("billion laughs") while converting.
const maxNodes = 1 << 20

// nodeValue converts a YAML node to the JSON-compatible values of
// unstructured objects (int64, float64, string, bool, nil, maps, lists).
func nodeValue(n *yaml.Node, depth int, count *int) (any, error) {
	*count++
	if *count > maxNodes || depth > 1000 {
		return nil, errors.New("document too large or too deeply nested")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], depth+1, count)
	case yaml.AliasNode:
		return nodeValue(n.Alias, depth+1, count)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: only plain string keys are supported (no merge keys or complex keys)", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			val, err := nodeValue(v, depth+1, count)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := nodeValue(c, depth+1, count)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				// Out of int64 range: keep it as a number, like JSON would.
				var f float64
				if err2 := n.Decode(&f); err2 != nil {
					return nil, fmt.Errorf("line %d: %v", n.Line, err)
				}
				return f, nil
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return f, nil
		default:
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// applyDiff edits the YAML tree so it holds after instead of before,
// touching only what differs: untouched fields keep their order, style and
// comments; new keys are appended in sorted order.
func applyDiff(n *yaml.Node, before, after any) error {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return applyDiff(n.Content[0], before, after)
	}
	if reflect.DeepEqual(before, after) {
		return nil
	}
	bm, bok := before.(map[string]any)
	am, aok := after.(map[string]any)
	if bok && aok && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); {
			key := n.Content[i].Value
			av, keep := am[key]
			if !keep {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				continue
			}
			if err := applyDiff(n.Content[i+1], bm[key], av); err != nil {
				return err
			}
			i += 2
		}
		var added []string
		for k := range am {
			if _, had := bm[k]; !had {
				added = append(added, k)
			}
		}
		sort.Strings(added)
		for _, k := range added {
			var kn, vn yaml.Node
			if err := kn.Encode(k); err != nil {
				return err
			}
			if err := vn.Encode(am[k]); err != nil {
				return err
			}
			n.Content = append(n.Content, &kn, &vn)
		}
		return nil
	}
	bl, bok := before.([]any)
	al, aok := after.([]any)
	if bok && aok && len(bl) == len(al) && n.Kind == yaml.SequenceNode && len(n.Content) == len(al) {
		for i := range al {
			if err := applyDiff(n.Content[i], bl[i], al[i]); err != nil {
				return err
			}
		}
		return nil
	}
	var nn yaml.Node
	if err := nn.Encode(after); err != nil {
		return err
	}
	nn.HeadComment, nn.LineComment, nn.FootComment = n.HeadComment, n.LineComment, n.FootComment
	*n = nn
	return nil
}

// blockStyle clears flow styles, so a changed JSON document prints as
// ordinary block YAML.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle | yaml.DoubleQuotedStyle
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// nodeJSON writes a YAML tree as compact JSON in the tree's key order.
func nodeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return nodeJSON(b, n.Content[0])
	case yaml.AliasNode:
		return nodeJSON(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := nodeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := nodeJSON(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		v, err := nodeValue(n, 0, new(int))
		if err != nil {
			return err
		}
		s, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(s)
	}
	return nil
}
