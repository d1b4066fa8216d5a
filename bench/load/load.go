// Package load is the HTTPS load generator of the benchmarks and the fault
// tests: a fixed number of POSTs over keep-alive connections from a fixed
// number of workers, to a loopback address only, bounded in time.
package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxDuration bounds a run whose Options.MaxDuration is zero.
const DefaultMaxDuration = 2 * time.Minute

// Options describe one load run.
type Options struct {
	// URL is the https:// (or http://) endpoint; its host must be a loopback
	// address or "localhost": the generator never loads another machine.
	URL string
	// Bodies are sent round-robin, one per request.
	Bodies [][]byte
	// ContentType of the bodies; "" means application/json.
	ContentType string
	// Concurrency is the number of workers, each with one keep-alive connection.
	Concurrency int
	// Requests is the total number of measured requests.
	Requests int
	// Warmup requests per worker are sent first and not measured (they open
	// the connections, so handshakes are not counted in the latencies).
	Warmup int
	// MaxDuration stops the run early; 0 means DefaultMaxDuration.
	MaxDuration time.Duration
	// TLS is the client TLS configuration (roots, server name).
	TLS *tls.Config
	// Check validates an answer; a non-nil error counts the request as
	// failed. nil accepts every 200.
	Check func(status int, body []byte) error
	// Timeout of one request; 0 means 10s.
	Timeout time.Duration
	// Measuring, if set, is called once after the warm-up, just before the
	// measured phase starts (e.g. to read the server's CPU time).
	Measuring func()
}

// Result is what a run measured.
type Result struct {
	Concurrency int
	// Requests completed (successful or not) in the measured phase.
	Requests int
	// Errors counts transport errors, non-200 answers and failed checks.
	Errors int
	// FirstError describes the first failure, for the report.
	FirstError string
	// Elapsed is the wall time of the measured phase.
	Elapsed time.Duration
	// Latencies of every measured request, sorted ascending.
	Latencies []time.Duration
	// Truncated is true when MaxDuration ended the run before Requests.
	Truncated bool
}

// RPS is the measured throughput in requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the latency at quantile q (0 < q <= 1) by nearest rank.
func (r Result) Percentile(q float64) time.Duration {
	return Percentile(r.Latencies, q)
}

// Percentile of sorted by nearest rank; 0 for an empty slice.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// CheckLoopback refuses URLs whose host is not a loopback address.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("load URL %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("load URL %q: scheme must be https or http", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("load URL %q: host must be a loopback address (127.0.0.0/8, ::1 or localhost)", raw)
	}
	return nil
}

// Run sends the load and waits for it to finish. It returns an error only for
// invalid options; failed requests are counted in the Result.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := CheckLoopback(o.URL); err != nil {
		return Result{}, err
	}
	if o.Concurrency < 1 {
		return Result{}, fmt.Errorf("load: concurrency %d must be at least 1", o.Concurrency)
	}
	if o.Requests < 1 {
		return Result{}, fmt.Errorf("load: requests %d must be at least 1", o.Requests)
	}
	if len(o.Bodies) == 0 {
		return Result{}, errors.New("load: no request body given")
	}
	if o.ContentType == "" {
		o.ContentType = "application/json"
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()

	tr := &http.Transport{
		TLSClientConfig:     o.TLS,
		MaxIdleConns:        o.Concurrency,
		MaxIdleConnsPerHost: o.Concurrency,
		MaxConnsPerHost:     o.Concurrency,
		IdleConnTimeout:     time.Minute,
		// HTTP/1.1, as the apiserver talks to webhooks by default.
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout}

	w := &worker{o: o, client: client}
	// Warm-up: every worker opens its connection before the clock starts.
	if o.Warmup > 0 {
		var wg sync.WaitGroup
		for range o.Concurrency {
			wg.Go(func() {
				for i := 0; i < o.Warmup && ctx.Err() == nil; i++ {
					_, _, _ = w.do(ctx, i)
				}
			})
		}
		wg.Wait()
	}

	var (
		next   atomic.Int64
		mu     sync.Mutex
		res    = Result{Concurrency: o.Concurrency}
		wg     sync.WaitGroup
		perLat = make([][]time.Duration, o.Concurrency)
	)
	if o.Measuring != nil {
		o.Measuring()
	}
	start := time.Now()
	for wi := range o.Concurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, o.Requests/o.Concurrency+1)
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.Requests {
					break
				}
				t0 := time.Now()
				err := w.check(ctx, i)
				d := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					// The run was cut short: this request was not answered
					// in time and is not part of the measurement.
					break
				}
				lat = append(lat, d)
				if err != nil {
					mu.Lock()
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					mu.Unlock()
				}
			}
			perLat[wi] = lat
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for _, l := range perLat {
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies)
	res.Requests = len(res.Latencies)
	res.Truncated = res.Requests < o.Requests
	return res, nil
}

type worker struct {
	o      Options
	client *http.Client
}

// check sends request i and validates the answer.
func (w *worker) check(ctx context.Context, i int) error {
	status, body, err := w.do(ctx, i)
	if err != nil {
		return err
	}
	if w.o.Check != nil {
		if err := w.o.Check(status, body); err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		return nil
	}
	if status != http.StatusOK {
		return fmt.Errorf("request %d: HTTP %d: %s", i, status, truncate(body, 200))
	}
	return nil
}

func (w *worker) do(ctx context.Context, i int) (int, []byte, error) {
	body := w.o.Bodies[i%len(w.o.Bodies)]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("request %d: %w", i, err)
	}
	req.Header.Set("Content-Type", w.o.ContentType)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("request %d: %w", i, err)
	}
	defer resp.Body.Close()
	// Read to the end so the connection goes back to the keep-alive pool.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("request %d: read answer: %w", i, err)
	}
	return resp.StatusCode, b, nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
