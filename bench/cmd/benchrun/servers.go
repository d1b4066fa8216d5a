package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/load"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// serverKind is one of the two servers compared under load.
type serverKind struct {
	Name   string // "linkerd-inject-policy serve" or "no-op webhook"
	Binary string
	// args builds the command line for the ports and cert dir.
	args func(certDir string, port, health int, kubeconfig string) []string
}

func ourServer(binary string) serverKind {
	return serverKind{Name: "linkerd-inject-policy serve", Binary: binary, args: func(certDir string, port, health int, kubeconfig string) []string {
		a := []string{"serve", "--cert-dir=" + certDir, "--host=127.0.0.1", "--port=" + strconv.Itoa(port),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(health), "--metrics-bind-address=0",
			// One decision line per request is the production default; keep it.
			"--log-level=info"}
		if kubeconfig != "" {
			a = append(a, "--kubeconfig="+kubeconfig)
		}
		return a
	}}
}

func noopServer(binary string) serverKind {
	return serverKind{Name: "no-op webhook", Binary: binary, args: func(certDir string, port, health int, _ string) []string {
		return []string{"--cert-dir=" + certDir, "--host=127.0.0.1", "--port=" + strconv.Itoa(port),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(health)}
	}}
}

// running is a started server.
type running struct {
	p         *proc.Process
	url       string
	healthURL string
	ready     time.Duration
}

// start runs the server with its log discarded (written to a file under
// dir so a failure can be read) and waits for /readyz.
func (k serverKind) start(ctx context.Context, dir, certDir, kubeconfig string) (*running, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	health, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp(dir, "server-*.log")
	if err != nil {
		return nil, err
	}
	p, err := proc.Start(k.Binary, k.args(certDir, port, health, kubeconfig), logf)
	if err != nil {
		logf.Close()
		return nil, err
	}
	go func() { <-p.Done(); logf.Close() }()
	r := &running{p: p, url: fmt.Sprintf("https://127.0.0.1:%d/mutate", port), healthURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", health)}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Polled every 2 ms: the resolution of the start-up figure.
	if r.ready, err = p.WaitReady(rctx, r.healthURL, 2*time.Millisecond); err != nil {
		p.Kill()
		b, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("%s: %w\n%s", k.Name, err, tail(string(b), 2000))
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// startupTimes starts and stops the server n times and returns each time to ready.
func startupTimes(ctx context.Context, k serverKind, dir, certDir string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		r, err := k.start(ctx, dir, certDir, "")
		if err != nil {
			return nil, err
		}
		out = append(out, r.ready)
		_ = r.p.Stop(10 * time.Second)
	}
	slices.Sort(out)
	return out, nil
}

// loadRun is the load at one concurrency level against one server.
type loadRun struct {
	Server string
	load.Result
}

// serverResult is all that was measured of one server.
type serverResult struct {
	Name      string
	Startup   []time.Duration
	IdleRSS   proc.Memory
	AfterLoad proc.Memory
	Runs      []loadRun
}

// certs makes a serving certificate directory and the client TLS config trusting it.
func certs(dir string) (string, *tls.Config, error) {
	certDir, err := os.MkdirTemp(dir, "certs-")
	if err != nil {
		return "", nil, err
	}
	ca, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		return "", nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return "", nil, fmt.Errorf("CA does not parse")
	}
	return certDir, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// measureServer runs the start-up, memory and load measurements of one server.
func measureServer(ctx context.Context, k serverKind, dir string, levels []int, requests int, progress io.Writer) (serverResult, error) {
	res := serverResult{Name: k.Name}
	certDir, tlsConfig, err := certs(dir)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "benchrun: %s: start-up time (5 starts)\n", k.Name)
	if res.Startup, err = startupTimes(ctx, k, dir, certDir, 5); err != nil {
		return res, err
	}
	r, err := k.start(ctx, dir, certDir, "")
	if err != nil {
		return res, err
	}
	defer func() { _ = r.p.Stop(10 * time.Second) }()
	// Let start-up garbage settle before reading the idle figure.
	time.Sleep(2 * time.Second)
	if res.IdleRSS, err = proc.ReadMemory(r.p.Pid()); err != nil {
		return res, err
	}
	objects := bench.Objects()
	body := bench.Review(objects[1], "0f7a4a4e-0000-4000-8000-000000000001") // the Deployment
	for _, c := range levels {
		n := requests
		if c == 1 {
			// One at a time is slow by nature; a quarter of the count keeps the run short.
			n = max(1000, requests/4)
		}
		fmt.Fprintf(progress, "benchrun: %s: %d requests at concurrency %d\n", k.Name, n, c)
		lr, err := load.Run(ctx, load.Options{
			URL: r.url, Bodies: [][]byte{body}, Concurrency: c, Requests: n, Warmup: 5, TLS: tlsConfig,
			MaxDuration: 2 * time.Minute,
			Check: func(status int, b []byte) error {
				if status != 200 || !strings.Contains(string(b), `"allowed":true`) {
					return fmt.Errorf("HTTP %d: %.200s", status, b)
				}
				return nil
			},
		})
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, loadRun{Server: k.Name, Result: lr})
	}
	if res.AfterLoad, err = proc.ReadMemory(r.p.Pid()); err != nil {
		return res, err
	}
	return res, nil
}
