package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/load"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
)

// hostileCPU is issue #17's bound: every input answered (or refused)
// within this much of the server's CPU.
const hostileCPU = time.Second

// Bounds of the hostile-input measurements, so a server that never stops
// cannot hold the run: a request waits this long for its answer, and the
// server's CPU is watched this long for the work to stop.
const (
	hostileTimeout = 20 * time.Second
	hostileSettle  = 30 * time.Second
	stallClients   = 16
	stallBody      = 100_000
	stallSent      = 1_000
	stallWait      = 30 * time.Second
)

// hostileRun is one input of issue #17 sent once to a fresh server.
type hostileRun struct {
	Input  string
	Path   string // of a malformed shape
	Code   int    // HTTP status (0: none)
	Body   string // first line of the answer
	Bytes  int
	Status string // "HTTP 400: …" or what went wrong
	Wall   time.Duration
	// CPU is the server's CPU time from the request until it stopped
	// working (or hostileSettle ran out: Busy).
	CPU  time.Duration
	Busy bool
	Peak proc.Memory
}

// stallRun is stallClients clients each sending stallSent bytes of a
// stallBody-byte body, then nothing.
type stallRun struct {
	Clients int
	// Dropped are the times until the server answered (e.g. 408) or closed
	// each connection; clients still waiting at stallWait are Held.
	Dropped []time.Duration
	Held    int
	RSS     proc.Memory // while they stalled, just before stallWait ran out or all were dropped
}

func measureHostile(ctx context.Context, ours serverKind, dir string, progress io.Writer) ([]hostileRun, *stallRun, error) {
	certDir, tlsConfig, err := certs(dir)
	if err != nil {
		return nil, nil, err
	}
	var out []hostileRun
	for _, h := range bench.HostileInputs() {
		fmt.Fprintf(progress, "benchrun: hostile input: %s\n", h.Name)
		r, err := ours.start(ctx, dir, certDir, "")
		if err != nil {
			return nil, nil, err
		}
		run, err := hostileOnce(ctx, r, tlsConfig, h)
		_ = r.p.Stop(10 * time.Second)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, run)
	}
	fmt.Fprintf(progress, "benchrun: %d stalled bodies\n", stallClients)
	r, err := ours.start(ctx, dir, certDir, "")
	if err != nil {
		return nil, nil, err
	}
	defer r.p.Stop(10 * time.Second)
	st, err := stall(ctx, r, tlsConfig)
	return out, st, err
}

func hostileOnce(ctx context.Context, r *running, tlsConfig *tls.Config, h bench.Hostile) (hostileRun, error) {
	body := bench.Review(h.Object, "0f7a4a4e-0000-4000-8000-000000000005")
	run := hostileRun{Input: h.Name, Path: h.Path, Bytes: len(h.Object.JSON)}
	cpu0, err := proc.ReadCPU(r.p.Pid())
	if err != nil {
		return run, err
	}
	res, err := load.Run(ctx, load.Options{
		URL: r.url, Bodies: [][]byte{body}, Concurrency: 1, Requests: 1, TLS: tlsConfig,
		Timeout: hostileTimeout, MaxDuration: hostileTimeout + 5*time.Second,
		Check: func(status int, b []byte) error {
			first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			run.Code, run.Body = status, first
			switch {
			case status == 200 && patched(b):
				run.Status = fmt.Sprintf("200, patched (%d KiB answer)", len(b)>>10)
			case status == 200:
				run.Status = fmt.Sprintf("200, not patched (%d bytes)", len(b))
			default:
				run.Status = fmt.Sprintf("%d: %s", status, truncate(first, 160))
			}
			return nil
		},
	})
	if err != nil {
		return run, err
	}
	if res.Errors > 0 {
		run.Status = "no answer: " + truncate(res.FirstError, 160)
	}
	if len(res.Latencies) > 0 {
		run.Wall = res.Latencies[0]
	}
	// Wait for the server to stop working on it (a request the client gave
	// up on may still be evaluated).
	last, err := proc.ReadCPU(r.p.Pid())
	if err != nil {
		return run, err
	}
	deadline := time.Now().Add(hostileSettle)
	for still := 0; still < 2; {
		if time.Now().After(deadline) {
			run.Busy = true
			break
		}
		time.Sleep(250 * time.Millisecond)
		now, err := proc.ReadCPU(r.p.Pid())
		if err != nil {
			return run, err
		}
		if now-last <= 10*time.Millisecond {
			still++
		} else {
			still = 0
		}
		last = now
	}
	run.CPU = last - cpu0
	run.Peak, err = proc.ReadMemory(r.p.Pid())
	return run, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// stall opens stallClients connections that each send the headers and
// stallSent bytes of a stallBody-byte request, then nothing, and times
// until the server drops each (bounded by stallWait).
func stall(ctx context.Context, r *running, tlsConfig *tls.Config) (*stallRun, error) {
	if err := load.CheckLoopback(r.url); err != nil {
		return nil, err
	}
	host := strings.TrimPrefix(strings.SplitN(r.url, "/mutate", 2)[0], "https://")
	st := &stallRun{Clients: stallClients}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, stallWait)
	defer cancel()
	for range stallClients {
		wg.Go(func() {
			d := tls.Dialer{Config: tlsConfig}
			conn, err := d.DialContext(cctx, "tcp", host)
			if err != nil {
				mu.Lock()
				st.Dropped = append(st.Dropped, time.Since(start))
				mu.Unlock()
				return
			}
			defer conn.Close()
			head := fmt.Sprintf("POST /mutate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", host, stallBody)
			_, _ = conn.Write(append([]byte(head), []byte(strings.Repeat(" ", stallSent))...))
			// Dropped is the server's first word on it: an answer (e.g. 408)
			// or closing the connection.
			_ = conn.SetReadDeadline(time.Now().Add(stallWait))
			_, _ = conn.Read(make([]byte, 512))
			held := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if held >= stallWait-100*time.Millisecond {
				st.Held++
				return
			}
			st.Dropped = append(st.Dropped, held)
		})
	}
	// The memory they pin, read while they are still held (or just before
	// the wait runs out).
	var watcher sync.WaitGroup
	watcher.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				if m, err := proc.ReadMemory(r.p.Pid()); err == nil {
					mu.Lock()
					if m.RSS > st.RSS.RSS {
						st.RSS = m
					}
					mu.Unlock()
				}
			}
		}
	})
	wg.Wait()
	cancel()
	watcher.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(st.Dropped)
	return st, nil
}

// met: answered within hostileCPU of CPU, and a malformed shape with a 400
// that names its path.
func (h hostileRun) met() bool {
	if h.Busy || h.CPU > hostileCPU || h.Code == 0 || h.Code >= 500 {
		return false
	}
	if h.Path != "" {
		return h.Code == 400 && strings.Contains(h.Body, h.Path)
	}
	return true
}
