// Package reports is serve --report-interval: doctor run periodically inside
// the webhook, its findings written as OpenReports objects. The full CLI
// gives it to serve.NewCommand; the lean webhook binary does not link it (nor
// doctor, client-go's dynamic client and the OpenReports types it brings).
package reports

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/doctor"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/internal/serve"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// reportLoopOptions configure the periodic doctor run of serve
// --report-interval.
type reportLoopOptions struct {
	// Interval between runs; 0 (or less) starts nothing.
	Interval time.Duration
	Client   kubernetes.Interface
	Dynamic  dynamic.Interface
	// ConfigPath is the PolicyConfig file serve watches ("" for the
	// defaults); each run reads it, and keeps the last valid one when it is
	// invalid, as the webhook does.
	ConfigPath       string
	LinkerdNamespace string
	// WaitReady blocks until the webhook is ready, or ctx ends (nil: no wait).
	WaitReady func(context.Context) error
	// Runs counts the runs by outcome.
	Runs *prometheus.CounterVec
	Log  logr.Logger
}

// newReportRunsMetric registers linkerd_inject_policy_report_runs_total on
// reg, or returns the one already registered there.
func newReportRunsMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linkerd_inject_policy_report_runs_total",
		Help: "Periodic doctor runs that write OpenReports objects (serve --report-interval), by outcome (ok, error).",
	}, []string{"outcome"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("register report metric: %w", err)
	}
	return c, nil
}

// startReportLoop starts the periodic doctor run in a goroutine and returns
// a function that waits for it to stop (after ctx ends). With no interval or
// no cluster it starts nothing and returns nil.
func startReportLoop(ctx context.Context, o reportLoopOptions) (wait func()) {
	if o.Interval <= 0 || o.Client == nil || o.Dynamic == nil {
		return nil
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runReportLoop(ctx, o)
	}()
	return wg.Wait
}

func runReportLoop(ctx context.Context, o reportLoopOptions) {
	log := o.Log
	if o.WaitReady != nil {
		if err := o.WaitReady(ctx); err != nil {
			return
		}
	}
	var last *policy.Config
	log.Info("writing doctor's findings as OpenReports objects periodically", "interval", o.Interval.String())
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		last = runReportsOnce(ctx, o, last)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runReportsOnce runs doctor and applies its reports, logging one line and
// counting the outcome. It returns the config it used.
func runReportsOnce(ctx context.Context, o reportLoopOptions, last *policy.Config) *policy.Config {
	start := time.Now()
	cfg := last
	if o.ConfigPath == "" {
		cfg = policy.DefaultConfig()
	} else if c, err := policy.LoadConfigFile(o.ConfigPath); err == nil {
		cfg = c
	} else if cfg == nil {
		// Never valid since serve started checking it: nothing to scan with.
		o.count("error")
		o.Log.Error(err, "doctor reports: no valid configuration", "config", o.ConfigPath)
		return nil
	} else {
		o.Log.Info("doctor reports: configuration invalid, using the last valid one", "config", o.ConfigPath, "error", err.Error())
	}
	res, err := doctor.Run(ctx, o.Client, doctor.Options{Config: cfg, ConfigPath: o.ConfigPath, Dynamic: o.Dynamic, LinkerdNamespace: o.LinkerdNamespace})
	if err != nil {
		if ctx.Err() == nil {
			o.count("error")
			o.Log.Error(err, "doctor reports: scan failed", "duration", time.Since(start).String())
		}
		return cfg
	}
	actions, err := doctor.ApplyReports(ctx, o.Dynamic, res)
	applied, deleted := 0, 0
	for _, a := range actions {
		if a.Action == "deleted" {
			deleted++
		} else {
			applied++
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			o.count("error")
			o.Log.Error(err, "doctor reports: writing reports failed", "findings", len(res.Findings),
				"applied", applied, "deleted", deleted, "duration", time.Since(start).String())
		}
		return cfg
	}
	o.count("ok")
	o.Log.Info("doctor reports written", "findings", len(res.Findings), "applied", applied, "deleted", deleted,
		"duration", time.Since(start).String())
	return cfg
}

func (o reportLoopOptions) count(outcome string) {
	if o.Runs != nil {
		o.Runs.WithLabelValues(outcome).Inc()
	}
}

// Start is a serve.Reporter: it starts the periodic doctor run for serve's
// options and returns a function that waits for it to stop (after ctx
// ends).
func Start(ctx context.Context, o serve.ReportOptions) (func(), error) {
	// doctor scans every kind it knows: the whole clientset.
	client, err := kubernetes.NewForConfig(o.RestConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(o.RestConfig)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	runs, err := newReportRunsMetric(crmetrics.Registry)
	if err != nil {
		return nil, err
	}
	wait := startReportLoop(ctx, reportLoopOptions{
		Interval:         o.Interval,
		Client:           client,
		Dynamic:          dyn,
		ConfigPath:       o.ConfigPath,
		LinkerdNamespace: o.LinkerdNamespace,
		WaitReady:        o.WaitReady,
		Runs:             runs,
		Log:              o.Log,
	})
	if wait == nil {
		wait = func() {}
	}
	return wait, nil
}
