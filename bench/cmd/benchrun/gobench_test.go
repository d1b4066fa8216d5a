package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseGoBenchGroupsRuns(t *testing.T) {
	out := `goos: linux
BenchmarkEvaluate/Pod-2         	  100000	      1000 ns/op	     100 B/op	       5 allocs/op
BenchmarkEvaluate/Pod-2         	  100000	      3000 ns/op	     100 B/op	       5 allocs/op
BenchmarkHandler/Job-2          	   10000	     20000 ns/op	   2.50 MB/s	    4000 B/op	      50 allocs/op
BenchmarkEvaluate/Pod-2         	  100000	      2000 ns/op	     100 B/op	       5 allocs/op
PASS
`
	got, err := parseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "Evaluate/Pod" || got[1].Name != "Handler/Job" {
		t.Fatalf("benchmarks %+v, want Evaluate/Pod then Handler/Job", got)
	}
	if m := median(got[0].NsOp); m != 2000 {
		t.Errorf("median ns/op %v, want 2000", m)
	}
	if s := spread(got[0].NsOp); s != 50 {
		t.Errorf("spread %v%%, want ±50%%", s)
	}
	if got[1].BOp[0] != 4000 || got[1].Allocs[0] != 50 {
		t.Errorf("MB/s column confused the parser: %+v", got[1])
	}
	if find(got, "Nope") != nil {
		t.Error("found a benchmark that is not there")
	}
}

func TestMedianOfEvenCount(t *testing.T) {
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median %v, want 2.5", m)
	}
	if median(nil) != 0 {
		t.Error("median of nothing must be 0")
	}
}

func TestWriteGeneratedKeepsTheProse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeGenerated(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	doc := "# Title\n\nintro\n\n" + string(b[len("# Benchmarks\n\n"):]) + "\n## After\n\nmore prose\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeGenerated(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want := "# Title\n\nintro\n\n" + beginMarker + "\nsecond\n" + endMarker + "\n\n## After\n\nmore prose\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeGenerated(path, "x"); err == nil || !strings.Contains(err.Error(), "no generated section") {
		t.Errorf("file without markers: %v, want a clear error", err)
	}
}

func TestKyvernoDocsPicksItsTwoConfigMaps(t *testing.T) {
	install := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kyverno\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kyverno\n  namespace: kyverno\ndata:\n  a: b\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kyverno-metrics\n  namespace: kyverno\n"
	got, err := kyvernoDocs([]byte(install))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "name: kyverno\n") || !strings.Contains(got, "name: kyverno-metrics\n") || strings.Contains(got, "other") || strings.Contains(got, "Namespace") {
		t.Errorf("picked:\n%s", got)
	}
	if _, err := kyvernoDocs([]byte("kind: Namespace\n")); err == nil {
		t.Error("a manifest without the ConfigMaps must be an error")
	}
}
