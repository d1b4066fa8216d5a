package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/load"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
)

func TestFitExponentRecoversThePower(t *testing.T) {
	for _, tt := range []struct {
		name string
		pow  float64
	}{{"linear time fits exponent 1", 1}, {"quadratic time fits exponent 2", 2}, {"constant time fits exponent 0", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			sizes := []float64{16, 64, 256, 1024}
			var ns []float64
			for _, n := range sizes {
				ns = append(ns, 37*math.Pow(n, tt.pow))
			}
			if got := fitExponent(sizes, ns); math.Abs(got-tt.pow) > 1e-9 {
				t.Fatalf("exponent %v, want %v", got, tt.pow)
			}
		})
	}
	if !math.IsNaN(fitExponent([]float64{5}, []float64{1})) {
		t.Error("one point has no slope")
	}
}

func TestLargestFitIsTheLineThroughThePeaks(t *testing.T) {
	r := report{}
	for _, c := range []int{1, 2, 4, 8} {
		r.Largest = append(r.Largest, largestRun{Role: roleOurs, Concurrency: c, After: proc.Memory{HWM: uint64(30<<20 + c*(12<<20))}})
		r.Largest = append(r.Largest, largestRun{Role: roleNoop, Concurrency: c, After: proc.Memory{HWM: 1 << 30}})
	}
	f, ok := r.largestFit(roleOurs)
	if !ok || math.Abs(f.Base-30<<20) > 1 || math.Abs(f.PerRequest-12<<20) > 1 || f.Max.Concurrency != 8 {
		t.Fatalf("fit %+v, %v; want 30 MiB + 12 MiB per request, largest at 8", f, ok)
	}
}

// loadAt is a load run with every latency equal to lat.
func loadAt(role string, c int, rps float64, lat time.Duration) serverResult {
	n := 1000
	lats := make([]time.Duration, n)
	for i := range lats {
		lats[i] = lat
	}
	return serverResult{Role: role, Name: role, Runs: []loadRun{{Result: load.Result{Concurrency: c, Requests: n, Elapsed: time.Duration(float64(n) / rps * 1e9), Latencies: lats}}}}
}

func TestTargetsAreMetOrMissedFromTheNumbers(t *testing.T) {
	bench := func(name string, ns float64) *goBench {
		return &goBench{Name: name, NsOp: []float64{ns}, Allocs: []float64{10}, BOp: []float64{1}}
	}
	tests := []struct {
		name       string
		handlerNs  float64
		oursRPS    float64
		oursP50    time.Duration
		oursPods   time.Duration
		wantRows   map[string]string // target prefix → met or missed
		kyvernoDir bool
	}{
		{"a handler at 1.5× the policy, 95 % of the no-op's throughput and 1.1× its p50 meet their targets", 15000, 950, 11 * time.Millisecond, 1050 * time.Millisecond,
			map[string]string{"`Handler/Deployment`": "met", "HTTPS at 64 clients: req/s": "met", "HTTPS at 64 clients: p50": "met", "Pods through": "met", "Pods: our overhead": "met"}, true},
		{"a handler at 3× the policy, 80 % of the throughput and 1.2× the p50 miss them", 30000, 800, 12 * time.Millisecond, 1200 * time.Millisecond,
			map[string]string{"`Handler/Deployment`": "**missed**", "HTTPS at 64 clients: req/s": "**missed**", "HTTPS at 64 clients: p50": "**missed**", "Pods through": "**missed**", "Pods: our overhead": "met"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := report{
				GoBench: []*goBench{bench("Handler/Deployment", tt.handlerNs), bench("EvaluatePatch/Deployment", 10000)},
				Servers: []serverResult{loadAt(roleOurs, 64, tt.oursRPS, tt.oursP50), loadAt(roleNoop, 64, 1000, 10*time.Millisecond)},
				Pods: []podRun{
					{Variant: "no webhook", Round: 1, Pods: 10, Elapsed: time.Second},
					{Variant: "patching no-op webhook", Round: 1, Pods: 10, Elapsed: 1000 * time.Millisecond},
					{Variant: "linkerd-inject-policy serve", Round: 1, Pods: 10, Elapsed: tt.oursPods},
					{Variant: "Kyverno v1.19.1", Round: 1, Pods: 10, Elapsed: 2 * time.Second},
				},
			}
			var b strings.Builder
			r.targets(func(f string, a ...any) { b.WriteString(sprintf(f, a...)) })
			for prefix, want := range tt.wantRows {
				row := ""
				for _, l := range strings.Split(b.String(), "\n") {
					if strings.HasPrefix(l, "| "+prefix) {
						row = l
					}
				}
				if row == "" {
					t.Fatalf("no row %q in\n%s", prefix, b.String())
				}
				if !strings.HasSuffix(row, "| "+want+" |") {
					t.Errorf("row %q: want %s", row, want)
				}
			}
		})
	}
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }

func TestReadChartMemoryReadsRequestAndLimit(t *testing.T) {
	path := t.TempDir() + "/values.yaml"
	if err := os.WriteFile(path, []byte("replicaCount: 1\nresources:\n  requests:\n    cpu: 10m\n    memory: 32Mi\n  limits:\n    memory: 128Mi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := readChartMemory(path)
	if err != nil || c.Request != 32<<20 || c.Limit != 128<<20 {
		t.Fatalf("got %+v, %v; want 32 MiB and 128 MiB", c, err)
	}
	if err := os.WriteFile(path, []byte("resources:\n  limits:\n    memory: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readChartMemory(path); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Fatalf("an unparsable quantity: %v, want an error naming it", err)
	}
}

func TestTargetsOfIssue17AreComputedFromTheRuns(t *testing.T) {
	r := report{
		Hostile: []hostileRun{
			{Input: "big", Code: 200, CPU: 300 * time.Millisecond},
			{Input: "slow", Code: 200, CPU: 3 * time.Second},
			{Input: "spec list", Path: "spec", Code: 400, Body: "Pod/apps/bad is malformed: spec: expected an object"},
			{Input: "annotations string", Path: "metadata.annotations", Code: 500, Body: "internal error"},
		},
		Stall:   &stallRun{Clients: 2, Dropped: []time.Duration{10 * time.Second}, Held: 1},
		Chart:   chartMemory{Limit: 128 << 20, LimitS: "128Mi"},
		Largest: []largestRun{{Role: roleOurs, Concurrency: 1, After: proc.Memory{HWM: 100 << 20}}, {Role: roleOurs, Concurrency: 4, After: proc.Memory{HWM: 200 << 20}}},
	}
	var b strings.Builder
	r.targets17(func(f string, a ...any) { b.WriteString(sprintf(f, a...)) }, nil)
	for _, want := range []string{
		"within 1s of the server's CPU | 1 of 2 | **missed** |",
		"naming the field path | 1 of 2 | **missed** |",
		"(within 30s) | 1 of 2 | **missed** |",
		"(128Mi) | 1 of 2 levels; highest peak 200.0 MiB | **missed** |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}
