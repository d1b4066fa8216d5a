package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The watchdog is a tiny shell process that outlives us: it reads process
// group ids on stdin and, if stdin reaches EOF without a "stopped" line (the
// test binary was killed, timed out or got Ctrl-C before cleanup ran), it
// terminates those groups and removes the cluster directory. That is how a
// crashed `go test` still leaves no etcd or apiserver behind.
const watchdogScript = `
trap '' INT HUP
dir=$1
pids=()
while IFS= read -r line; do
  case $line in
    stopped) exit 0 ;;
    pid\ *) pids+=("${line#pid }") ;;
  esac
done
for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
for _ in $(seq 50); do
  alive=0
  for p in "${pids[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.2
done
for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
rm -rf -- "$dir"
`

func (c *Cluster) startWatchdog() error {
	cmd := exec.Command("bash", "-c", watchdogScript, "lip-e2e-watchdog", c.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	c.watchdog, c.wdIn = cmd, in
	// envtest starts etcd and kube-apiserver in their own process groups
	// but does not tell us their pids: find our children running from Dir.
	pids, err := childrenUsing(c.Dir)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	for _, p := range pids {
		c.watch(p)
	}
	return nil
}

// watch hands a process group to the watchdog.
func (c *Cluster) watch(pid int) {
	if c.wdIn != nil {
		_, _ = fmt.Fprintf(c.wdIn, "pid %d\n", pid)
	}
}

// childrenUsing lists our direct child processes whose command line mentions dir.
func childrenUsing(dir string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(self) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
