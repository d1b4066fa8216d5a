package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/load"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
)

// largestRequestsPerClient is how many largest Pods each client sends.
const largestRequestsPerClient = 4

// largestRun is a fresh server sent the largest admissible Pod by c
// concurrent clients.
type largestRun struct {
	Server      string
	Role        string
	Concurrency int
	Bytes       int // of the AdmissionReview
	Idle        proc.Memory
	After       proc.Memory
	CPU         time.Duration
	// Statuses counts the answers by HTTP status (0: no answer).
	Statuses map[int]int
	Patched  int
	Result   load.Result
}

// measureLargest starts each server afresh for every concurrency level (so
// VmHWM is the peak of that level alone) and sends it the largest
// admissible Pod from c clients at once, largestRequestsPerClient each.
// Answers are counted by status: a deliberate refusal (429, 503, 413) is
// not an error, a missing patch on a 200 is.
func measureLargest(ctx context.Context, kinds []serverKind, dir string, size int, levels []int, progress io.Writer) ([]largestRun, error) {
	body := bench.Review(bench.LargestPod(size), "0f7a4a4e-0000-4000-8000-000000000004")
	var out []largestRun
	for _, k := range kinds {
		certDir, tlsConfig, err := certs(dir)
		if err != nil {
			return nil, err
		}
		for _, c := range levels {
			fmt.Fprintf(progress, "benchrun: %s: %d concurrent largest Pods (%d KiB), %d each\n", k.Name, c, len(body)>>10, largestRequestsPerClient)
			r, err := k.start(ctx, dir, certDir, "")
			if err != nil {
				return nil, err
			}
			time.Sleep(time.Second)
			run := largestRun{Server: k.Name, Role: k.Role, Concurrency: c, Bytes: len(body), Statuses: map[int]int{}}
			var mu sync.Mutex
			if run.Idle, err = proc.ReadMemory(r.p.Pid()); err == nil {
				var cpu0 time.Duration
				cpu0, err = proc.ReadCPU(r.p.Pid())
				if err == nil {
					run.Result, err = load.Run(ctx, load.Options{
						URL: r.url, Bodies: [][]byte{body}, Concurrency: c, Requests: c * largestRequestsPerClient, TLS: tlsConfig,
						MaxDuration: 2 * time.Minute, Timeout: 30 * time.Second,
						Check: func(status int, b []byte) error {
							mu.Lock()
							defer mu.Unlock()
							run.Statuses[status]++
							switch {
							case status == 200 && allowed(b) && patched(b):
								run.Patched++
							case status == 200 && k.Role == roleNoop && allowed(b):
							case status == 429 || status == 503 || status == 413:
							default:
								return fmt.Errorf("HTTP %d: %.200s", status, b)
							}
							return nil
						},
					})
				}
				if err == nil {
					var cpu1 time.Duration
					cpu1, err = proc.ReadCPU(r.p.Pid())
					run.CPU = cpu1 - cpu0
				}
				if err == nil {
					run.After, err = proc.ReadMemory(r.p.Pid())
				}
			}
			_ = r.p.Stop(10 * time.Second)
			if err != nil {
				return nil, err
			}
			// A transport error (e.g. the server dropped the connection) has no status.
			if lost := run.Result.Requests - sum(run.Statuses); lost > 0 {
				run.Statuses[0] += lost
			}
			out = append(out, run)
		}
	}
	return out, nil
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
