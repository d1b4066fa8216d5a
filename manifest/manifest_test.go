package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseAll splits and parses an input, failing the test on any error.
func parseAll(t *testing.T, name, data string) []*Document {
	t.Helper()
	docs, err := Split(name, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := d.Parse(); err != nil {
			t.Fatalf("%s: document %d: %v", d.Source, d.Index, err)
		}
	}
	return docs
}

// edit sets an annotation on every object of every document, as a policy would.
func edit(t *testing.T, docs []*Document, key, value string) {
	t.Helper()
	for _, d := range docs {
		var outs []map[string]any
		for _, o := range d.Objects() {
			out := deepCopy(o.Value)
			md, _ := out["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				out["metadata"] = md
			}
			ann, _ := md["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				md["annotations"] = ann
			}
			ann[key] = value
			outs = append(outs, out)
		}
		if err := d.SetResult(outs); err != nil {
			t.Fatal(err)
		}
	}
}

func deepCopy(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		switch y := x.(type) {
		case map[string]any:
			out[k] = deepCopy(y)
		case []any:
			l := make([]any, len(y))
			for i, e := range y {
				if m, ok := e.(map[string]any); ok {
					l[i] = deepCopy(m)
				} else {
					l[i] = e
				}
			}
			out[k] = l
		default:
			out[k] = x
		}
	}
	return out
}

func TestSplitNumbersDocumentsAndSkipsEmptyOnes(t *testing.T) {
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n"
	docs := parseAll(t, "f.yaml", in)
	if len(docs) != 3 {
		t.Fatalf("got %d documents, want 3 (the empty one is dropped, the comment-only one kept)", len(docs))
	}
	var names []string
	for _, d := range docs {
		for _, o := range d.Objects() {
			names = append(names, o.Name)
		}
	}
	if got := strings.Join(names, " "); got != "f.yaml#1 f.yaml#3" {
		t.Errorf("objects %q, want f.yaml#1 f.yaml#3 (document 2 is only a comment)", got)
	}
	if docs[1].Objects() != nil {
		t.Errorf("a comment-only document has objects")
	}
}

func TestSplitReadsAJSONStream(t *testing.T) {
	docs := parseAll(t, "s.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"}}`)
	if len(docs) != 2 || !docs[0].JSON || !docs[1].JSON || docs[1].Index != 2 {
		t.Fatalf("docs %+v", docs)
	}
	if got := docs[1].Objects()[0].Value["kind"]; got != "Secret" {
		t.Errorf("second object kind %v", got)
	}
	if _, err := Split("bad.json", []byte(`{"a": 1} {"b": }`)); err == nil || !strings.Contains(err.Error(), "bad.json: document 2: invalid JSON") {
		t.Errorf("broken second JSON value: error %v", err)
	}
}

func TestParseRejectsWhatIsNoObject(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a plain string", "just text\n", "not a Kubernetes object: expected a mapping, got a string"},
		{"a document without kind", "apiVersion: v1\nmetadata: {name: x}\n", "kind is missing"},
		{"a document without apiVersion", "kind: Pod\n", "apiVersion is missing"},
		{"metadata that is a list", "apiVersion: v1\nkind: Pod\nmetadata: [a]\n", "metadata: expected a mapping, got a list"},
		{"a List item that is a number", "apiVersion: v1\nkind: List\nitems: [3]\n", "items[0]: not a Kubernetes object: expected a mapping, got a number"},
		{"a List item without kind", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n", "items[0]: not a Kubernetes object: kind is missing"},
		{"duplicate keys", "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n", `line 3: duplicate key "kind"`},
		{"merge keys", "base: &b {a: 1}\napiVersion: v1\nkind: ConfigMap\ndata:\n  <<: *b\n", "no merge keys"},
		{"broken YAML", "kind: Job\n  bad: indent\n", "invalid YAML"},
		{"an alias bomb", aliasBomb(), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Split("x.yaml", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			err = docs[0].Parse()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// aliasBomb is a small document whose aliases expand to billions of nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestAListStaysAListAndEachItemIsItsOwnObject(t *testing.T) {
	docs := parseAll(t, "l.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n")
	objs := docs[0].Objects()
	if len(objs) != 2 || objs[1].Name != "l.yaml#1.items[1]" || objs[1].Item != "items[1]" {
		t.Fatalf("objects %+v", objs)
	}
	if err := docs[0].SetResult([]map[string]any{objs[0].Value}); err == nil {
		t.Errorf("SetResult with one result for two items: no error")
	}
	edit(t, docs, "k", "v")
	var out bytes.Buffer
	if err := WriteYAML(&out, docs); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "apiVersion: v1\nkind: List\nitems:\n") || strings.Count(got, "k: v") != 2 {
		t.Errorf("List output:\n%s", got)
	}
}

func TestUnchangedDocumentsPrintByteForByte(t *testing.T) {
	in := "# head comment\napiVersion: v1\nkind: ConfigMap   # odd spacing kept\nmetadata:\n  name: a\ndata: {x: \"1\"}\n---\n# only a comment\n"
	docs := parseAll(t, "f.yaml", in)
	for _, d := range docs {
		var outs []map[string]any
		for _, o := range d.Objects() {
			outs = append(outs, o.Value)
		}
		if err := d.SetResult(outs); err != nil {
			t.Fatal(err)
		}
		if d.Changed() {
			t.Errorf("document %d changed though its result is itself", d.Index)
		}
	}
	var out bytes.Buffer
	if err := WriteYAML(&out, docs); err != nil {
		t.Fatal(err)
	}
	if out.String() != in {
		t.Errorf("output differs from input:\n--- in\n%s\n--- out\n%s", in, out.String())
	}
}

func TestAChangedDocumentKeepsCommentsOrderAndUnknownFields(t *testing.T) {
	in := `# the head comment
kind: Job
apiVersion: batch/v1
metadata:
  name: j # a line comment
  labels:
    zeta: z
    alpha: a
spec:
  futureField: {mode: quantum}
  template:
    spec:
      containers:
      - name: c
        image: x
`
	docs := parseAll(t, "j.yaml", in)
	edit(t, docs, "linkerd.io/inject", "disabled")
	if !docs[0].Changed() {
		t.Fatal("not changed")
	}
	var out bytes.Buffer
	if err := WriteYAML(&out, docs); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	order := []string{"# the head comment", "kind: Job", "apiVersion: batch/v1", "name: j # a line comment", "zeta: z", "alpha: a", "annotations:", "linkerd.io/inject: disabled", "futureField:", "mode: quantum", "containers:\n      - name: c"}
	last := -1
	for _, s := range order {
		i := strings.Index(got, s)
		if i < 0 {
			t.Errorf("output lost %q:\n%s", s, got)
			continue
		}
		if i < last {
			t.Errorf("%q moved:\n%s", s, got)
		}
		last = i
	}
	// Writing again prints the same: the edit is applied once.
	var again bytes.Buffer
	if err := WriteYAML(&again, docs); err != nil {
		t.Fatal(err)
	}
	if again.String() != got {
		t.Errorf("second write differs:\n%s", again.String())
	}
}

func TestListIndentationFollowsTheOriginal(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"kubectl's style stays compact", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n", "  containers:\n  - name: c\n"},
		{"indented lists stay indented", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: c\n", "  containers:\n    - name: c\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			docs := parseAll(t, "p.yaml", tt.in)
			edit(t, docs, "a", "b")
			var out bytes.Buffer
			if err := WriteYAML(&out, docs); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
		})
	}
}

func TestJSONDocuments(t *testing.T) {
	in := `{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}, "data": {"z": "1", "a": "2"}}`
	t.Run("a changed JSON document prints as block YAML", func(t *testing.T) {
		docs := parseAll(t, "c.json", in)
		edit(t, docs, "k", "v")
		var out bytes.Buffer
		if err := WriteYAML(&out, docs); err != nil {
			t.Fatal(err)
		}
		want := "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: a\n  annotations:\n    k: v\ndata:\n  z: \"1\"\n  a: \"2\"\n"
		if out.String() != want {
			t.Errorf("got\n%s\nwant\n%s", out.String(), want)
		}
	})
	t.Run("JSON output keeps the key order and leaves comment-only documents out", func(t *testing.T) {
		docs := parseAll(t, "c.json", in)
		yamlDocs := parseAll(t, "y.yaml", "# nothing\n")
		edit(t, docs, "k", "v")
		var out bytes.Buffer
		if err := WriteJSON(&out, append(docs, yamlDocs...)); err != nil {
			t.Fatal(err)
		}
		want := "{\n  \"kind\": \"ConfigMap\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {\n    \"name\": \"a\",\n    \"annotations\": {\n      \"k\": \"v\"\n    }\n  },\n  \"data\": {\n    \"z\": \"1\",\n    \"a\": \"2\"\n  }\n}\n"
		if out.String() != want {
			t.Errorf("got\n%s\nwant\n%s", out.String(), want)
		}
	})
	t.Run("numbers and booleans keep their types", func(t *testing.T) {
		docs := parseAll(t, "n.yaml", "apiVersion: v1\nkind: X\nspec: {replicas: 3, big: 99999999999999999999, ratio: 0.5, on: true, none: null, s: \"3\"}\n")
		var out bytes.Buffer
		if err := WriteJSON(&out, docs); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"replicas": 3,`, `"big": 100000000000000000000,`, `"ratio": 0.5,`, `"on": true,`, `"none": null,`, `"s": "3"`} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("JSON lacks %s:\n%s", want, out.String())
			}
		}
	})
}

func TestExpandInputsWalksDirectoriesInSortedOrder(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.yaml", "a/z.yml", "a/a.json", "c.txt", "0.YAML"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ExpandInputs([]string{dir, "-"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = strings.TrimPrefix(got[i], dir+"/")
	}
	if s := strings.Join(got, " "); s != "0.YAML a/a.json a/z.yml b.yaml -" {
		t.Errorf("inputs %s", s)
	}
	if _, err := ExpandInputs([]string{"-", "-"}); err == nil || !strings.Contains(err.Error(), "stdin given twice") {
		t.Errorf("stdin twice: %v", err)
	}
	if _, err := ExpandInputs([]string{filepath.Join(dir, "nope")}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	data, name, err := ReadSource("-", strings.NewReader("x"))
	if err != nil || name != StdinName || string(data) != "x" {
		t.Errorf("stdin: %q %q %v", data, name, err)
	}
}
