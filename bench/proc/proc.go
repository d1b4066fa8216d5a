// Package proc runs the server processes the benchmarks and fault tests
// measure, and reads their memory from /proc.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Memory is a process's resident memory, in bytes.
type Memory struct {
	// RSS is the resident set size now (VmRSS).
	RSS uint64
	// HWM is the peak resident set size since start (VmHWM).
	HWM uint64
}

// ReadMemory reads VmRSS and VmHWM of pid from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read %s: %w", path, err)
	}
	return parseStatus(b, path)
}

func parseStatus(b []byte, path string) (Memory, error) {
	var m Memory
	var seenRSS, seenHWM bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("%s: %s: unexpected value %q", path, key, rest)
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		if key == "VmRSS" {
			m.RSS, seenRSS = kb*1024, true
		} else {
			m.HWM, seenHWM = kb*1024, true
		}
	}
	if !seenRSS || !seenHWM {
		return Memory{}, fmt.Errorf("%s: no VmRSS/VmHWM (is it a kernel thread or a zombie?)", path)
	}
	return m, nil
}

// Process is a server started by Start.
type Process struct {
	Cmd *exec.Cmd
	// Started is when the process was forked.
	Started time.Time
	done    chan struct{}
	waitErr error
}

// Start runs binary with args; its output goes to log (nil: discarded). The
// process dies with the caller (Pdeathsig), so a killed test leaves nothing behind.
func Start(binary string, args []string, log io.Writer) (*Process, error) {
	return StartEnv(binary, args, nil, log)
}

// StartEnv is Start with env added to the caller's environment.
func StartEnv(binary string, args, env []string, log io.Writer) (*Process, error) {
	cmd := exec.Command(binary, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid of the process.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to grace, then kills.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("pid %d did not stop within %s of SIGTERM; killed", p.Pid(), grace)
	}
}

// WaitReady polls url (plain HTTP, e.g. http://127.0.0.1:8081/readyz) every
// interval until it answers 200, and returns the time since the process was
// started. It fails early if the process exits.
func (p *Process) WaitReady(ctx context.Context, url string, interval time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, fmt.Errorf("readiness URL %s: %w", url, err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.Started), nil
			}
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("pid %d exited before %s was ready: %v", p.Pid(), url, p.waitErr)
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for %s: %w", url, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// ReadCPU returns the CPU time (user + system, all threads) pid has used so
// far, from /proc/<pid>/stat, in steps of 10 ms.
func ReadCPU(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return parseStat(b, path)
}

func parseStat(b []byte, path string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name in %q", path, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want at least 13", path, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: utime/stime %q: %w", path, s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
