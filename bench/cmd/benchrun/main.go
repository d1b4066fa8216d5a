// Command benchrun is what `make bench` runs after the Go benchmarks: it
// starts the webhook and the no-op baseline, measures start-up, memory and
// HTTPS load on loopback, times Pod creation on a real kube-apiserver with
// and without them, and prints one report, also written into
// docs/benchmarks.md between the generated-section markers. It reports; it
// never fails on a time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

type options struct {
	goBench   string
	before    string // go test -bench output of the baseline commit
	baseline  string // which commit that is, for the report
	profiles  []string
	largest   []int
	largestKB int
	memLimit  string // GOMEMLIMIT for a second run of the largest Pods
	chart     string // the chart's values.yaml
	serve     string
	noop      string
	out       string
	requests  int
	levels    []int
	pods      int
	workers   int
	rounds    int
	hostile   bool
	cluster   bool
	commit    string
	kyvernoNo string
	kyverno   string
}

func main() {
	cluster.Isolate()
	var o options
	var levels string
	var profiles, largest string
	flag.StringVar(&o.goBench, "go-bench", "", "output of go test -bench -benchmem (benchstat format); several files separated by commas")
	flag.StringVar(&o.before, "before-bench", "", "go test -bench output of the handler benchmarks at the baseline commit")
	flag.StringVar(&o.baseline, "baseline", "", "the baseline commit, for the report")
	flag.StringVar(&profiles, "profiles", "", "comma-separated label=file pairs of `go tool pprof -top` output to include, in order (e.g. before=a.txt,after=b.txt)")
	flag.StringVar(&largest, "largest-concurrency", "1,2,3,4,8", "concurrent requests of the largest admissible Pod to measure peak RSS at (empty: skip)")
	flag.StringVar(&o.memLimit, "largest-gomemlimit", "", "also measure the largest Pods with this GOMEMLIMIT in serve's environment (e.g. 100MiB)")
	flag.StringVar(&o.chart, "chart-values", "deploy/charts/linkerd-inject-policy/values.yaml", "the chart's values, whose memory request and limit the largest Pods are compared with")
	flag.IntVar(&o.largestKB, "largest-kib", 3*1024-64, "KiB of JSON of the largest admissible Pod (the apiserver admits up to 3 MiB)")
	flag.StringVar(&o.serve, "serve", defaultServe(), "the binary that runs `serve` ($LIP_WEBHOOK_BINARY, else $LIP_BINARY)")
	flag.StringVar(&o.noop, "noop", "", "noop-webhook binary")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose generated section is replaced (created if missing)")
	flag.IntVar(&o.requests, "requests", 20000, "HTTPS requests per concurrency level (a quarter at concurrency 1)")
	flag.StringVar(&levels, "concurrency", "1,16,64,256", "comma-separated concurrency levels")
	flag.IntVar(&o.pods, "pods", 500, "Pods created per admission set-up on the real apiserver")
	flag.IntVar(&o.workers, "pod-workers", 16, "concurrent Pod creations")
	flag.IntVar(&o.rounds, "pod-rounds", 3, "rounds of Pod creation, the set-ups taking turns in each")
	flag.BoolVar(&o.hostile, "hostile", true, "send the inputs of issue #17 (and stalled bodies) to our server")
	flag.BoolVar(&o.cluster, "cluster", true, "run the Pod-creation measurements on a real apiserver")
	flag.StringVar(&o.commit, "commit", "", "git commit measured, for the report")
	flag.StringVar(&o.kyverno, "kyverno-dir", "", "directory with a Kyverno build (kyverno, crds/, install.yaml) to measure side by side")
	flag.StringVar(&o.kyvernoNo, "kyverno-unavailable", "", "why Kyverno was not measured, for the report")
	flag.Parse()
	var err error
	if o.levels, err = positiveInts(levels); err != nil || len(o.levels) == 0 {
		fmt.Fprintf(os.Stderr, "benchrun: -concurrency %q: want positive integers\n", levels)
		os.Exit(2)
	}
	if o.largest, err = positiveInts(largest); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: -largest-concurrency %q: want positive integers\n", largest)
		os.Exit(2)
	}
	for _, pair := range strings.Split(profiles, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		if !strings.Contains(pair, "=") {
			fmt.Fprintf(os.Stderr, "benchrun: -profiles %q: want label=file pairs\n", profiles)
			os.Exit(2)
		}
		o.profiles = append(o.profiles, pair)
	}
	if o.serve == "" || o.noop == "" {
		fmt.Fprintln(os.Stderr, "benchrun: -serve (or $LIP_WEBHOOK_BINARY or $LIP_BINARY) and -noop are required")
		os.Exit(2)
	}
	// The control plane's harness logs through controller-runtime; its
	// progress goes to stderr by other means.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

// defaultServe is the binary the image ships for serve: the lean webhook
// binary when $LIP_WEBHOOK_BINARY names it, else the full one.
func defaultServe() string {
	if b := os.Getenv("LIP_WEBHOOK_BINARY"); b != "" {
		return b
	}
	return os.Getenv("LIP_BINARY")
}

// positiveInts parses a comma-separated list of positive integers ("" is none).
func positiveInts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		c, err := strconv.Atoi(s)
		if err != nil || c < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", s)
		}
		out = append(out, c)
	}
	return out, nil
}

func readGoBench(files string) ([]*goBench, error) {
	var all []*goBench
	for _, name := range strings.Split(files, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("go benchmarks: %w", err)
		}
		b, err := parseGoBench(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, b...)
	}
	return all, nil
}

func run(ctx context.Context, o options, stdout, progress io.Writer) error {
	dir, err := os.MkdirTemp("", "lip-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep := report{When: time.Now().UTC(), Commit: o.commit, Machine: machine(), KyvernoNote: o.kyvernoNo}
	if rep.GoBench, err = readGoBench(o.goBench); err != nil {
		return err
	}
	if rep.Before, err = readGoBench(o.before); err != nil {
		return err
	}
	rep.Baseline = o.baseline
	for _, pair := range o.profiles {
		label, file, _ := strings.Cut(pair, "=")
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("profile %s: %w", label, err)
		}
		rep.Profiles = append(rep.Profiles, profile{Label: label, Top: string(b)})
	}

	// The HTTPS load sends the Deployment; the patching no-op answers it
	// with the patch our handler gives it.
	body := bench.Review(bench.Objects()[1], "0f7a4a4e-0000-4000-8000-000000000001")
	loadPatch, err := writePatch(dir, "patch-load.json", body)
	if err != nil {
		return err
	}
	ours, noop := ourServer(o.serve, "info"), noopServer(o.noop, "")
	kinds := []serverKind{ours, noop, noopServer(o.noop, loadPatch), ourServer(o.serve, "error"), lazyGC(ours)}
	if rep.Servers, err = measureServers(ctx, kinds, body, dir, o.levels, o.requests, progress); err != nil {
		return err
	}
	if len(o.largest) > 0 {
		kinds := []serverKind{ours, noop}
		if o.memLimit != "" {
			limited := ours
			limited.Name += " with GOMEMLIMIT=" + o.memLimit
			limited.Role = roleOursLimited
			limited.Env = []string{"GOMEMLIMIT=" + o.memLimit}
			kinds = append(kinds, limited)
		}
		if rep.Largest, err = measureLargest(ctx, kinds, dir, o.largestKB<<10, o.largest, progress); err != nil {
			return fmt.Errorf("largest admissible Pod: %w", err)
		}
		if o.chart != "" {
			rep.Chart, err = readChartMemory(o.chart)
			if err != nil {
				fmt.Fprintf(progress, "benchrun: %v (the largest Pods are not compared with the chart)\n", err)
			}
		}
	}
	if o.hostile {
		if rep.Hostile, rep.Stall, err = measureHostile(ctx, ours, dir, progress); err != nil {
			return fmt.Errorf("hostile inputs: %w", err)
		}
	}
	if o.cluster {
		podPatch, err := writePatch(dir, "patch-pod.json", podReview())
		if err != nil {
			return err
		}
		runs, err := measureCluster(ctx, dir, ours, noop, noopServer(o.noop, podPatch), o.pods, o.workers, o.rounds, o.kyverno, progress)
		if err != nil {
			return fmt.Errorf("pod creation on the real apiserver: %w", err)
		}
		rep.Pods = runs
		rep.PodWorkers = o.workers
		rep.PodRounds = o.rounds
	}
	text := rep.markdown()
	fmt.Fprint(stdout, text)
	if o.out != "" {
		if err := writeGenerated(o.out, text); err != nil {
			return err
		}
		fmt.Fprintf(progress, "benchrun: wrote %s\n", o.out)
	}
	return nil
}
