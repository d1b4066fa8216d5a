package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/load"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// Roles of the servers compared: the report finds each by its role.
const (
	roleOurs        = "ours"
	roleNoop        = "noop"
	rolePatching    = "patching-noop"
	roleOursQuiet   = "ours-error"
	roleOursLimited = "ours-gomemlimit"
	roleOursGOGC    = "ours-gogc"
)

// lazyGOGC is the GOGC of the server that shows how much of our CPU per
// request is garbage collection: the collector runs a quarter as often as
// at the default (100), at the price of a larger heap.
const lazyGOGC = "400"

// lazyGC is s collecting garbage at GOGC=lazyGOGC.
func lazyGC(s serverKind) serverKind {
	s.Name += " with GOGC=" + lazyGOGC
	s.Role = roleOursGOGC
	s.Env = append(s.Env, "GOGC="+lazyGOGC)
	return s
}

// serverKind is one of the servers compared under load.
type serverKind struct {
	Name   string // e.g. "linkerd-inject-policy serve" or "no-op webhook"
	Role   string
	Binary string
	// Env is added to the server's environment (e.g. GOMEMLIMIT).
	Env []string
	// args builds the command line for the ports and cert dir.
	args func(certDir string, port, health int, kubeconfig string) []string
}

// ourServer runs serve at logLevel: "info" is the production default (one
// decision line per request), "error" shows what that line costs.
func ourServer(binary, logLevel string) serverKind {
	name, role := "linkerd-inject-policy serve", roleOurs
	if logLevel != "info" {
		name += " --log-level=" + logLevel
		role = roleOursQuiet
	}
	return serverKind{Name: name, Role: role, Binary: binary, args: func(certDir string, port, health int, kubeconfig string) []string {
		a := []string{"serve", "--cert-dir=" + certDir, "--host=127.0.0.1", "--port=" + strconv.Itoa(port),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(health), "--metrics-bind-address=0",
			"--log-level=" + logLevel}
		if kubeconfig != "" {
			a = append(a, "--kubeconfig="+kubeconfig)
		}
		return a
	}}
}

// noopServer is the no-op webhook; with a patchFile it is the patching
// no-op, answering every review with that precomputed patch.
func noopServer(binary, patchFile string) serverKind {
	name, role := "no-op webhook", roleNoop
	if patchFile != "" {
		name, role = "patching no-op webhook", rolePatching
	}
	return serverKind{Name: name, Role: role, Binary: binary, args: func(certDir string, port, health int, _ string) []string {
		a := []string{"--cert-dir=" + certDir, "--host=127.0.0.1", "--port=" + strconv.Itoa(port),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(health)}
		if patchFile != "" {
			a = append(a, "--patch-file="+patchFile)
		}
		return a
	}}
}

// Answers are matched whatever the encoder's spacing.
var (
	allowedRE = regexp.MustCompile(`"allowed"\s*:\s*true`)
	patchRE   = regexp.MustCompile(`"patch"\s*:\s*"`)
)

// allowed reports whether an AdmissionReview answer allows; patched
// whether it carries a patch.
func allowed(b []byte) bool { return allowedRE.Match(b) }
func patched(b []byte) bool { return patchRE.Match(b) }

// writePatch computes, with our handler in process, the patch our webhook
// answers review with, and writes it where the patching no-op reads it.
func writePatch(dir, name string, review []byte) (string, error) {
	h, err := webhook.NewHandler(webhook.HandlerOptions{})
	if err != nil {
		return "", err
	}
	patch, err := bench.PatchOf(h, review)
	if err != nil {
		return "", fmt.Errorf("the patch for the patching no-op: %w", err)
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, patch, 0o644)
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
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	health, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp(dir, "server-*.log")
	if err != nil {
		return nil, err
	}
	p, err := proc.StartEnv(k.Binary, k.args(certDir, port, health, kubeconfig), k.Env, logf)
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
	// CPU is the server process's CPU time (user + system) over the
	// measured requests, from /proc/<pid>/stat.
	CPU time.Duration
}

// CPUPerRequest is the server's CPU time divided by the measured requests.
func (r loadRun) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// serverResult is all that was measured of one server.
type serverResult struct {
	Name      string
	Role      string
	Binary    string
	Size      int64 // bytes of the binary
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

// measureServers runs the start-up, memory and load measurements of the
// servers. Both run at once and the load alternates between them level by
// level, so a change in the machine's background load hits both alike and
// the ratios stay fair.
func measureServers(ctx context.Context, kinds []serverKind, body []byte, dir string, levels []int, requests int, progress io.Writer) ([]serverResult, error) {
	results := make([]serverResult, len(kinds))
	servers := make([]*running, len(kinds))
	tlsConfigs := make([]*tls.Config, len(kinds))
	defer func() {
		for _, r := range servers {
			if r != nil {
				_ = r.p.Stop(10 * time.Second)
			}
		}
	}()
	for i, k := range kinds {
		results[i].Name, results[i].Role, results[i].Binary = k.Name, k.Role, k.Binary
		if st, err := os.Stat(k.Binary); err == nil {
			results[i].Size = st.Size()
		}
		certDir, tlsConfig, err := certs(dir)
		if err != nil {
			return nil, err
		}
		tlsConfigs[i] = tlsConfig
		fmt.Fprintf(progress, "benchrun: %s: start-up time (5 starts)\n", k.Name)
		if results[i].Startup, err = startupTimes(ctx, k, dir, certDir, 5); err != nil {
			return nil, err
		}
		if servers[i], err = k.start(ctx, dir, certDir, ""); err != nil {
			return nil, err
		}
	}
	// Let start-up garbage settle before reading the idle figure.
	time.Sleep(2 * time.Second)
	for i, r := range servers {
		var err error
		if results[i].IdleRSS, err = proc.ReadMemory(r.p.Pid()); err != nil {
			return nil, err
		}
	}
	for _, c := range levels {
		n := requests
		if c == 1 {
			// One at a time is slow by nature; a quarter of the count keeps the run short.
			n = max(1000, requests/4)
		}
		for i, r := range servers {
			fmt.Fprintf(progress, "benchrun: %s: %d requests at concurrency %d\n", kinds[i].Name, n, c)
			wantPatch := kinds[i].Role != roleNoop
			var cpu0 time.Duration
			var cpuErr error
			lr, err := load.Run(ctx, load.Options{
				URL: r.url, Bodies: [][]byte{body}, Concurrency: c, Requests: n, Warmup: 5, TLS: tlsConfigs[i],
				MaxDuration: 2 * time.Minute,
				Measuring:   func() { cpu0, cpuErr = proc.ReadCPU(r.p.Pid()) },
				Check: func(status int, b []byte) error {
					if status != 200 || !allowed(b) || wantPatch && !patched(b) {
						return fmt.Errorf("HTTP %d: %.200s", status, b)
					}
					return nil
				},
			})
			if err != nil {
				return nil, err
			}
			cpu1, err := proc.ReadCPU(r.p.Pid())
			if err = errors.Join(cpuErr, err); err != nil {
				return nil, err
			}
			results[i].Runs = append(results[i].Runs, loadRun{Server: kinds[i].Name, Result: lr, CPU: cpu1 - cpu0})
		}
	}
	for i, r := range servers {
		var err error
		if results[i].AfterLoad, err = proc.ReadMemory(r.p.Pid()); err != nil {
			return nil, err
		}
	}
	return results, nil
}
