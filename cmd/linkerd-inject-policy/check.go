package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// checkFlags are the check command's flags.
type checkFlags struct {
	files      []string
	configPath string
	output     string
}

func newCheckCmd() *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check -f PATH|DIR|- [-f ...] [--config FILE] [-o yaml|json|table]",
		Short: "Apply the policy to manifest files offline",
		Long: `Apply the injection policy to Kubernetes manifests offline, as the webhook
would in an enforced namespace, and print them: pipe the result to
kubectl apply -f -.

Inputs are files, directories (every .yaml, .yml and .json file below them,
in sorted order) or - for stdin; multi-document YAML, JSON and List objects
(whose items are evaluated one by one) are understood. Documents are printed
in input order; those the policy does not change are printed exactly as they
were, changed ones keep their field order, comments and unknown fields.

Every document is treated as admitted in enforce mode, except that a
document whose metadata.namespace is one of the configuration's
excludedNamespaces, or which lowers its own mode with the
linkerd-inject-policy.io/mode annotation, is left unchanged, as the webhook
would leave it.

-o table prints one row per object: the rules that changed it and why
(including rules that deliberately left it alone, such as user_override).

Exit status: 0 on success, whether or not anything changed; 2 on bad input,
with one "file: document N: reason" line per problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.InOrStdin(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "manifest file, directory, or - for stdin (repeatable)")
	fl.StringVar(&f.configPath, "config", "", "PolicyConfig file (default: built-in defaults)")
	fl.StringVarP(&f.output, "output", "o", "yaml", "output format: yaml, json or table")
	return cmd
}

// checkDoc is one input document and what the policy made of it.
type checkDoc struct {
	source string // file name, "<stdin>" for -
	index  int    // 1-based document number within source
	raw    []byte
	json   bool       // the document was written as JSON
	node   *yaml.Node // nil for an empty (comment-only) document
	value  map[string]any
	out    map[string]any // value with the policy applied
	rows   []checkRow
}

func (d *checkDoc) changed() bool { return d.node != nil && !reflect.DeepEqual(d.value, d.out) }

// checkRow is one object of the table output.
type checkRow struct {
	source, object, rules, reasons string
}

func runCheck(stdin io.Reader, stdout io.Writer, f *checkFlags) error {
	switch f.output {
	case "yaml", "json", "table":
	default:
		return &exitError{code: 2, err: fmt.Errorf("-o %q: must be yaml, json or table", f.output)}
	}
	if len(f.files) == 0 {
		return &exitError{code: 2, err: errors.New("no input: give -f FILE, -f DIR or -f - for stdin")}
	}
	cfg := policy.DefaultConfig()
	if f.configPath != "" {
		c, err := policy.LoadConfigFile(f.configPath)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--config: %w", err)}
		}
		cfg = c
	}

	sources, err := expandInputs(f.files)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var docs []*checkDoc
	var problems []string
	for _, src := range sources {
		data, name, err := readSource(src, stdin)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		ds, err := splitDocuments(name, data)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, d := range ds {
			if err := checkDocument(d, cfg); err != nil {
				problems = append(problems, fmt.Sprintf("%s: document %d: %v", d.source, d.index, err))
				continue
			}
			docs = append(docs, d)
		}
	}
	if len(problems) > 0 {
		// Nothing is printed: a partial stream piped to kubectl apply
		// would apply half of the input.
		return &exitError{code: 2, err: errors.New(strings.Join(problems, "\n"))}
	}

	w := bufio.NewWriter(stdout)
	switch f.output {
	case "yaml":
		err = writeYAML(w, docs)
	case "json":
		err = writeJSON(w, docs)
	case "table":
		err = writeTable(w, docs)
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// expandInputs turns -f values into files: directories are walked
// recursively in sorted order for .yaml, .yml and .json files.
func expandInputs(paths []string) ([]string, error) {
	var out []string
	stdin := false
	for _, p := range paths {
		if p == "-" {
			if stdin {
				return nil, errors.New("-f -: stdin given twice")
			}
			stdin = true
			out = append(out, p)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func readSource(src string, stdin io.Reader) ([]byte, string, error) {
	if src == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "<stdin>", fmt.Errorf("<stdin>: %w", err)
		}
		return data, "<stdin>", nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, src, fmt.Errorf("%s: %w", src, err)
	}
	return data, src, nil
}

// splitDocuments cuts a file into its documents, keeping each one's bytes
// so unchanged documents can be printed exactly as they came.
func splitDocuments(name string, data []byte) ([]*checkDoc, error) {
	var docs []*checkDoc
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
			docs = append(docs, &checkDoc{source: name, index: i, raw: raw, json: true})
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
		docs = append(docs, &checkDoc{source: name, index: i, raw: chunk})
		i++
	}
	return docs, nil
}

// checkDocument parses a document and evaluates the object(s) in it.
func checkDocument(d *checkDoc, cfg *policy.Config) error {
	var n yaml.Node
	if err := yaml.Unmarshal(d.raw, &n); err != nil {
		return fmt.Errorf("invalid YAML: %v", err)
	}
	if n.Kind == 0 || (n.Kind == yaml.DocumentNode && len(n.Content) == 0) {
		return nil // only comments: printed as it is
	}
	v, err := nodeValue(&n, 0, new(int))
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("not a Kubernetes object: expected a mapping, got %s", describeValue(v))
	}
	d.node = &n
	d.value = obj
	if err := requireTyped(obj); err != nil {
		return err
	}
	items, isList := obj["items"].([]any)
	if !isList || !strings.HasSuffix(obj["kind"].(string), "List") {
		out, row, err := checkObject(obj, cfg)
		if err != nil {
			return err
		}
		row.source = fmt.Sprintf("%s#%d", d.source, d.index)
		d.out, d.rows = out, []checkRow{row}
		return nil
	}
	// A List: each item is evaluated on its own; the List stays a List.
	newItems := make([]any, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return fmt.Errorf("items[%d]: not a Kubernetes object: expected a mapping, got %s", i, describeValue(it))
		}
		if err := requireTyped(m); err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
		out, row, err := checkObject(m, cfg)
		if err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
		row.source = fmt.Sprintf("%s#%d.items[%d]", d.source, d.index, i)
		newItems[i] = out
		d.rows = append(d.rows, row)
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	out["items"] = newItems
	d.out = out
	return nil
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

// checkObject evaluates one object as the webhook would in an enforced
// namespace (respecting excluded namespaces and the object's own mode
// annotation).
func checkObject(obj map[string]any, cfg *policy.Config) (map[string]any, checkRow, error) {
	u := &unstructured.Unstructured{Object: obj}
	row := checkRow{object: objectRef(u), rules: "-", reasons: "-"}
	ns := u.GetNamespace()
	enforced := map[string]string{policy.LabelMode: string(policy.ModeEnforce)}
	if mode := policy.ResolveMode(cfg, ns, enforced, u.GetAnnotations()); mode != policy.ModeEnforce {
		if cfg.IsExcluded(ns) {
			row.reasons = "excluded_namespace"
		} else {
			row.reasons = "mode_" + string(mode) + " (object annotation)"
		}
		return obj, row, nil
	}
	dec, err := policy.Evaluate(u, policy.Context{Namespace: ns}, cfg)
	if err != nil {
		return nil, row, err
	}
	var rules, reasons []string
	for _, c := range dec.Changes {
		if !slicesContains(rules, c.Rule) {
			rules = append(rules, c.Rule)
		}
		if !slicesContains(reasons, c.Reason) {
			reasons = append(reasons, c.Reason)
		}
	}
	for _, s := range dec.Skipped {
		r := s.Reason + " (" + s.Rule + ")"
		if !slicesContains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	if len(rules) > 0 {
		row.rules = strings.Join(rules, ",")
	}
	if len(reasons) > 0 {
		row.reasons = strings.Join(reasons, ",")
	}
	return dec.Object.Object, row, nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func objectRef(u *unstructured.Unstructured) string {
	name := u.GetName()
	if name == "" && u.GetGenerateName() != "" {
		name = u.GetGenerateName() + "*"
	}
	if name == "" {
		name = "(unnamed)"
	}
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + name
	}
	return u.GetKind() + "/" + name
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

func writeYAML(w io.Writer, docs []*checkDoc) error {
	for i, d := range docs {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if !d.changed() {
			raw := d.raw
			if _, err := w.Write(raw); err != nil {
				return err
			}
			if len(raw) > 0 && raw[len(raw)-1] != '\n' {
				if _, err := io.WriteString(w, "\n"); err != nil {
					return err
				}
			}
			continue
		}
		if err := applyDiff(d.node, d.value, d.out); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.source, d.index, err)
		}
		if d.json {
			blockStyle(d.node)
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if !indentedSequences(d.raw) {
			enc.CompactSeqIndent()
		}
		if err := enc.Encode(d.node); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.source, d.index, err)
		}
		if err := enc.Close(); err != nil {
			return err
		}
	}
	return nil
}

// indentedSequences guesses whether the document indents list items under
// their key ("key:\n  - a") rather than not ("key:\n- a", kubectl's style),
// so a changed document keeps the look of the original.
func indentedSequences(raw []byte) bool {
	indented, compact := 0, 0
	lines := strings.Split(string(raw), "\n")
	for i := 0; i+1 < len(lines); i++ {
		key := strings.TrimRight(lines[i], " \r")
		if !strings.HasSuffix(key, ":") {
			continue
		}
		keyIndent := len(key) - len(strings.TrimLeft(key, " "))
		next := lines[i+1]
		item := strings.TrimLeft(next, " ")
		if !strings.HasPrefix(item, "- ") && item != "-" {
			continue
		}
		if len(next)-len(item) > keyIndent {
			indented++
		} else {
			compact++
		}
	}
	return indented > compact
}

func writeJSON(w io.Writer, docs []*checkDoc) error {
	for _, d := range docs {
		if d.node == nil {
			continue // a comment-only YAML document has no JSON form
		}
		if d.changed() {
			if err := applyDiff(d.node, d.value, d.out); err != nil {
				return fmt.Errorf("%s: document %d: render: %w", d.source, d.index, err)
			}
		}
		var compact bytes.Buffer
		if err := nodeJSON(&compact, d.node); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.source, d.index, err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.source, d.index, err)
		}
		out.WriteByte('\n')
		if _, err := w.Write(out.Bytes()); err != nil {
			return err
		}
	}
	return nil
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

func writeTable(w io.Writer, docs []*checkDoc) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tOBJECT\tRULES\tREASONS")
	for _, d := range docs {
		for _, r := range d.rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.source, r.object, r.rules, r.reasons)
		}
	}
	return tw.Flush()
}
