package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
)

// ReportOptions is what serve gives the periodic reports of
// --report-interval.
type ReportOptions struct {
	// Interval between runs (positive).
	Interval time.Duration
	// RestConfig reaches the cluster, with serve's user agent.
	RestConfig *rest.Config
	// ConfigPath is the PolicyConfig file serve watches ("" for the defaults).
	ConfigPath       string
	LinkerdNamespace string
	// WaitReady blocks until the webhook is ready, or ctx ends (nil: no wait).
	WaitReady func(context.Context) error
	Log       logr.Logger
}

// A Reporter starts serve --report-interval's periodic reports and returns
// a function that waits for them to stop once ctx ends. The full CLI passes
// doctor's (package internal/serve/reports) to NewCommand; the lean webhook
// binary passes none, so it links neither doctor nor what writing reports
// needs, and refuses the flag.
type Reporter func(ctx context.Context, o ReportOptions) (wait func(), err error)

// errNoReporter is the usage error of --report-interval in a binary without
// a Reporter.
var errNoReporter = errors.New("--report-interval: this binary does not write reports; run `linkerd-inject-policy serve` (the image has it at /linkerd-inject-policy; the chart does so with reports.enabled)")

// startReports starts the reporter for serve's flags, and returns the
// context the rest of serve runs with and a function that stops the
// reports and waits for them. Without a cluster it only says so.
func startReports(ctx context.Context, f *serveFlags, restConfig *rest.Config, log logr.Logger) (context.Context, func(), error) {
	if restConfig == nil {
		log.Info("--report-interval ignored: no cluster configured")
		return ctx, func() {}, nil
	}
	var ready func(context.Context) error
	if f.healthAddr != "0" {
		ready = waitReadyz(f.healthAddr)
	}
	ctx, cancel := context.WithCancel(ctx)
	wait, err := f.reporter(ctx, ReportOptions{
		Interval:         f.reportInterval,
		RestConfig:       restConfig,
		ConfigPath:       f.configPath,
		LinkerdNamespace: f.linkerdNamespace,
		WaitReady:        ready,
		Log:              log.WithName("reports"),
	})
	if err != nil {
		cancel()
		return ctx, nil, fmt.Errorf("--report-interval: %w", err)
	}
	return ctx, func() { cancel(); wait() }, nil
}

// waitReadyz polls the health probe address's /readyz until it answers 200
// or ctx ends. A wildcard host is reached on loopback.
func waitReadyz(addr string) func(context.Context) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	client := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context) error {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}
