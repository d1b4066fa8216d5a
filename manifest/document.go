package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Document is one document of an input: a YAML document or one value of a
// JSON stream.
type Document struct {
	// Source is the input's name ("<stdin>" for stdin), Index the
	// document's 1-based number in it.
	Source string
	Index  int
	// Raw is the document exactly as it came, printed as it is when
	// nothing changes.
	Raw []byte
	// JSON tells that the document was written as JSON.
	JSON bool

	node  *yaml.Node     // nil for an empty (comment-only) document
	value map[string]any // the parsed object
	out   map[string]any // what it becomes; nil: unchanged
	list  bool           // the object is a List whose items are the objects
	// rendered: node holds out (applied once, whatever is written after)
	rendered bool
}

// Object is one Kubernetes object of a document: the document's own
// object, or an item of a List.
type Object struct {
	// Name is where the object is, "file#N" or "file#N.items[I]".
	Name string
	// Item is "items[I]" for an item of a List, else "".
	Item string
	// Value is the object, in the JSON-compatible form of unstructured
	// objects. It must not be modified: pass a changed copy to SetResult.
	Value map[string]any
}

// Split cuts an input into its documents, keeping each one's bytes so
// unchanged documents can be printed exactly as they came. Documents are
// not parsed yet (see Parse), so every bad document can be reported.
func Split(name string, data []byte) ([]*Document, error) {
	var docs []*Document
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for i := 1; ; i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: document %d: invalid JSON: %v", name, i, err)
			}
			docs = append(docs, &Document{Source: name, Index: i, Raw: raw, JSON: true})
		}
		return docs, nil
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", name, i, err)
		}
		if len(bytes.TrimSpace(chunk)) == 0 {
			continue
		}
		docs = append(docs, &Document{Source: name, Index: i, Raw: chunk})
		i++
	}
	return docs, nil
}

// Parse reads the document's object. A comment-only document parses to no
// objects. The error names what is wrong, without the document's name
// (callers add "file: document N:").
func (d *Document) Parse() error {
	var n yaml.Node
	if err := yaml.Unmarshal(d.Raw, &n); err != nil {
		return fmt.Errorf("invalid YAML: %v", err)
	}
	if n.Kind == 0 || (n.Kind == yaml.DocumentNode && len(n.Content) == 0) {
		return nil // only comments: printed as it is
	}
	v, err := nodeValue(&n, 0, new(int))
	if err != nil {
		return err
	}
	if v == nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Value == "" {
		return nil // an explicit "---" with only comments after it
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("not a Kubernetes object: expected a mapping, got %s", describeValue(v))
	}
	if err := requireTyped(obj); err != nil {
		return err
	}
	items, isList := obj["items"].([]any)
	if isList && strings.HasSuffix(obj["kind"].(string), "List") {
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("items[%d]: not a Kubernetes object: expected a mapping, got %s", i, describeValue(it))
			}
			if err := requireTyped(m); err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
		}
		d.list = true
	}
	d.node, d.value = &n, obj
	return nil
}

// Objects returns the document's objects: none for a comment-only document,
// each item of a List (which stays a List), else the document's object.
func (d *Document) Objects() []Object {
	if d.node == nil {
		return nil
	}
	name := fmt.Sprintf("%s#%d", d.Source, d.Index)
	if !d.list {
		return []Object{{Name: name, Value: d.value}}
	}
	items := d.value["items"].([]any)
	out := make([]Object, len(items))
	for i, it := range items {
		item := fmt.Sprintf("items[%d]", i)
		out[i] = Object{Name: name + "." + item, Item: item, Value: it.(map[string]any)}
	}
	return out
}

// SetResult records what the objects become, one per Objects() entry, in
// that order. It must come before the document is written.
func (d *Document) SetResult(objects []map[string]any) error {
	if d.rendered {
		return errors.New("set result: the document was already written")
	}
	if d.node == nil {
		if len(objects) == 0 {
			return nil
		}
		return errors.New("set result: the document has no objects")
	}
	if !d.list {
		if len(objects) != 1 {
			return fmt.Errorf("set result: want 1 object, got %d", len(objects))
		}
		d.out = objects[0]
		return nil
	}
	if n := len(d.value["items"].([]any)); len(objects) != n {
		return fmt.Errorf("set result: want %d items, got %d", n, len(objects))
	}
	out := make(map[string]any, len(d.value))
	for k, v := range d.value {
		out[k] = v
	}
	items := make([]any, len(objects))
	for i, o := range objects {
		items[i] = o
	}
	out["items"] = items
	d.out = out
	return nil
}

// Changed reports whether the result differs from the document.
func (d *Document) Changed() bool {
	return d.node != nil && d.out != nil && !reflect.DeepEqual(d.value, d.out)
}

func requireTyped(obj map[string]any) error {
	for _, f := range [...]string{"apiVersion", "kind"} {
		s, ok := obj[f].(string)
		if !ok || s == "" {
			return fmt.Errorf("not a Kubernetes object: %s is missing", f)
		}
	}
	if md, ok := obj["metadata"]; ok && md != nil {
		if _, ok := md.(map[string]any); !ok {
			return fmt.Errorf("metadata: expected a mapping, got %s", describeValue(md))
		}
	}
	return nil
}

func describeValue(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
