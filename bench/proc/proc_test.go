package proc

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    Memory
		wantErr string
	}{
		{"both fields are read in bytes", "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\nThreads: 3\n", Memory{RSS: 1 << 20, HWM: 2 << 20}, ""},
		{"a kernel thread has no memory lines", "Name:\tkthreadd\nThreads: 1\n", Memory{}, "no VmRSS"},
		{"a value in another unit is an error", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", Memory{}, "unexpected value"},
		{"a non-numeric value is an error", "VmHWM:\tx kB\nVmRSS:\t1 kB\n", Memory{}, "VmHWM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.status), "status")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.HWM < m.RSS {
		t.Errorf("implausible memory %+v: RSS must be positive and at most the peak", m)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("reading a pid that cannot exist must fail")
	}
}

// TestHelperServer is the child process of TestWaitReadyAndKill.
func TestHelperServer(t *testing.T) {
	addr := os.Getenv("PROC_HELPER_ADDR")
	if addr == "" {
		t.Skip("child process of TestWaitReadyAndKill")
	}
	time.Sleep(100 * time.Millisecond) // not ready at once
	_ = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

func TestWaitReadyAndKill(t *testing.T) {
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	t.Setenv("PROC_HELPER_ADDR", addr)
	p, err := Start(os.Args[0], []string{"-test.run=^TestHelperServer$"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.WaitReady(ctx, "http://"+addr+"/", 10*time.Millisecond); err != nil {
		p.Kill()
		t.Fatal(err)
	}
	if _, err := ReadMemory(p.Pid()); err != nil {
		t.Errorf("memory of the running child: %v", err)
	}
	p.Kill()
	if !p.Exited() {
		t.Fatal("process still running after Kill")
	}
	if _, err := p.WaitReady(ctx, "http://"+addr+"/", 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitReady on a dead process: %v, want an 'exited' error", err)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr string
	}{
		{"utime and stime are added, in ticks of 10 ms", "42 (noop) S 1 42 42 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 9 0 100 0 0", 1750 * time.Millisecond, ""},
		{"a command name with spaces and parentheses is skipped whole", "42 (a b) c)) S 1 42 42 0 -1 4194560 500 0 0 0 3 4 0 0 20 0 9 0 100 0 0", 70 * time.Millisecond, ""},
		{"a line cut short is an error", "42 (x) S 1 2 3", 0, "fields after"},
		{"a non-numeric utime is an error", "42 (x) S 1 42 42 0 -1 4194560 500 0 0 0 u 25 0", 0, "utime/stime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat), "stat")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReadCPUOfThisProcessGrowsWithWork(t *testing.T) {
	before, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		x++
	}
	after, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU time went from %v to %v over 300 ms of busy loop (%d turns)", before, after, x)
	}
}
