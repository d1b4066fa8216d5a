package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// WriteYAML prints the documents as a YAML stream in their order: unchanged
// ones exactly as they came, changed ones as an edit of their own tree (so
// comments, field order and unknown fields stay, and list indentation
// follows the original). JSON documents that changed print as block YAML.
func WriteYAML(w io.Writer, docs []*Document) error {
	for i, d := range docs {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if !d.Changed() {
			raw := d.Raw
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
		if err := d.render(); err != nil {
			return err
		}
		if d.JSON {
			blockStyle(d.node)
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if !indentedSequences(d.Raw) {
			enc.CompactSeqIndent()
		}
		if err := enc.Encode(d.node); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.Source, d.Index, err)
		}
		if err := enc.Close(); err != nil {
			return err
		}
	}
	return nil
}

// render applies the result to the document's tree, once.
func (d *Document) render() error {
	if !d.Changed() || d.rendered {
		return nil
	}
	if err := applyDiff(d.node, d.value, d.out); err != nil {
		return fmt.Errorf("%s: document %d: render: %w", d.Source, d.Index, err)
	}
	d.rendered = true
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

// WriteJSON prints the documents as a stream of indented JSON values, keys
// in the documents' order. Comment-only YAML documents have no JSON form
// and are left out.
func WriteJSON(w io.Writer, docs []*Document) error {
	for _, d := range docs {
		if d.node == nil {
			continue
		}
		if err := d.render(); err != nil {
			return err
		}
		var compact bytes.Buffer
		if err := nodeJSON(&compact, d.node); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.Source, d.Index, err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
			return fmt.Errorf("%s: document %d: render: %w", d.Source, d.Index, err)
		}
		out.WriteByte('\n')
		if _, err := w.Write(out.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
