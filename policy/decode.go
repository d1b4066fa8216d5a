package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// LoadConfigFile reads and loads a PolicyConfig file.
func LoadConfigFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	cfg, err := LoadConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// LoadConfig decodes a PolicyConfig strictly (unknown fields are errors),
// applies the defaults of every field it does not set and validates it.
// The error lists every problem found, one per line, each with its field
// path, such as `rules[2].match.kinds[0]: unknown kind "Deploymnet"`.
func LoadConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration: want apiVersion " + APIVersion + ", kind " + KindPolicyConfig)
		}
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("config: more than one YAML document; want exactly one PolicyConfig")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config: %w", err)
	}

	var errs fieldErrors
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	checkShape(root, reflect.TypeFor[Config](), "", &errs)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	cfg := &Config{}
	if err := root.Decode(cfg); err != nil {
		// checkShape accepts only what decodes; this is a safety net.
		return nil, fmt.Errorf("decode config: %w", err)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fieldErrors collects "path: problem" lines.
type fieldErrors []string

func (e *fieldErrors) add(path, format string, args ...any) {
	if path == "" {
		path = "(root)"
	}
	*e = append(*e, path+": "+fmt.Sprintf(format, args...))
}

func (e fieldErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return errors.New("invalid PolicyConfig:\n" + strings.Join(e, "\n"))
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkShape walks the YAML tree against the Go type it decodes into, so
// every unknown field and every wrongly typed value is reported with its
// path, not just the first one the decoder trips over.
func checkShape(n *yaml.Node, t reflect.Type, path string, errs *fieldErrors) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: the default applies
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			errs.add(path, "expected an object, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			p := joinPath(path, key)
			if seen[key] {
				errs.add(p, "duplicate field")
				continue
			}
			seen[key] = true
			ft, ok := fields[key]
			if !ok {
				errs.add(p, "unknown field%s", suggest(key, fields))
				continue
			}
			checkShape(val, ft, p, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			errs.add(path, "expected a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			errs.add(path, "expected a map, got %s", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := path + "[" + key + "]"
			if seen[key] {
				errs.add(p, "duplicate key")
				continue
			}
			seen[key] = true
			checkShape(n.Content[i+1], t.Elem(), p, errs)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			errs.add(path, "expected a string, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			errs.add(path, "expected true or false, got %s", describe(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			errs.add(path, "expected an integer, got %s", describe(n))
		}
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// yamlFields maps the YAML keys of struct t (with inlined structs) to types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known fields, the quickest fix for a typo.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	lower := strings.ToLower(key)
	for _, n := range names {
		if editDistance(strings.ToLower(n), lower) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

// editDistance is the Levenshtein distance, to suggest the field a typo meant.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
