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

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

type options struct {
	goBench   string
	serve     string
	noop      string
	out       string
	requests  int
	levels    []int
	pods      int
	workers   int
	cluster   bool
	commit    string
	kyvernoNo string
	kyverno   string
}

func main() {
	cluster.Isolate()
	var o options
	var levels string
	flag.StringVar(&o.goBench, "go-bench", "", "output of go test -bench -benchmem (benchstat format)")
	flag.StringVar(&o.serve, "serve", os.Getenv("LIP_BINARY"), "linkerd-inject-policy binary")
	flag.StringVar(&o.noop, "noop", "", "noop-webhook binary")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose generated section is replaced (created if missing)")
	flag.IntVar(&o.requests, "requests", 20000, "HTTPS requests per concurrency level (a quarter at concurrency 1)")
	flag.StringVar(&levels, "concurrency", "1,16,64,256", "comma-separated concurrency levels")
	flag.IntVar(&o.pods, "pods", 500, "Pods created per admission set-up on the real apiserver")
	flag.IntVar(&o.workers, "pod-workers", 16, "concurrent Pod creations")
	flag.BoolVar(&o.cluster, "cluster", true, "run the Pod-creation measurements on a real apiserver")
	flag.StringVar(&o.commit, "commit", "", "git commit measured, for the report")
	flag.StringVar(&o.kyverno, "kyverno-dir", "", "directory with a Kyverno build (kyverno, crds/, install.yaml) to measure side by side")
	flag.StringVar(&o.kyvernoNo, "kyverno-unavailable", "", "why Kyverno was not measured, for the report")
	flag.Parse()
	for _, s := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "benchrun: -concurrency %q: want positive integers\n", levels)
			os.Exit(2)
		}
		o.levels = append(o.levels, c)
	}
	if o.serve == "" || o.noop == "" {
		fmt.Fprintln(os.Stderr, "benchrun: -serve (or $LIP_BINARY) and -noop are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout, progress io.Writer) error {
	dir, err := os.MkdirTemp("", "lip-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep := report{When: time.Now().UTC(), Commit: o.commit, Machine: machine(), KyvernoNote: o.kyvernoNo}
	if o.goBench != "" {
		f, err := os.Open(o.goBench)
		if err != nil {
			return fmt.Errorf("go benchmarks: %w", err)
		}
		rep.GoBench, err = parseGoBench(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	ours, noop := ourServer(o.serve, "info"), noopServer(o.noop)
	if rep.Servers, err = measureServers(ctx, []serverKind{ours, noop, ourServer(o.serve, "error")}, dir, o.levels, o.requests, progress); err != nil {
		return err
	}
	if o.cluster {
		runs, err := measureCluster(ctx, dir, ours, noop, o.pods, o.workers, o.kyverno, progress)
		if err != nil {
			return fmt.Errorf("pod creation on the real apiserver: %w", err)
		}
		rep.Pods = runs
		rep.PodWorkers = o.workers
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
