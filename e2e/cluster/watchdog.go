package cluster

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// The watchdog is a tiny shell process that outlives us. It waits for EOF on
// its stdin; if that comes without a "stopped" line first (the test binary
// was killed, timed out or got Ctrl-C before its cleanup ran), it terminates
// every process whose command line names the cluster directory (etcd,
// kube-apiserver, kube-controller-manager, kubectl: each gets the fresh,
// unique temp dir in its flags) and removes the directory. That is how a
// crashed `go test` still leaves nothing behind. It is started before any
// component, so there is no window in which a component could escape it.
const watchdogScript = `
trap '' INT HUP
dir=$LIP_WATCHDOG_DIR
while IFS= read -r line; do
  [ "$line" = stopped ] && exit 0
done
# Pure bash (no grep, no subshell arguments naming dir), so that the
# watchdog never finds itself.
victims=()
find_victims() {
  victims=()
  local f p a
  for f in /proc/[0-9]*/cmdline; do
    p=${f#/proc/}; p=${p%/cmdline}
    while IFS= read -r -d '' a; do
      if [[ $a == *"$dir"* ]]; then victims+=("$p"); break; fi
    done < "$f" 2>/dev/null
  done
}
find_victims
for p in "${victims[@]}"; do kill -TERM "$p" 2>/dev/null; done
for _ in $(seq 25); do
  find_victims
  [ ${#victims[@]} = 0 ] && break
  sleep 0.2
done
for p in "${victims[@]}"; do kill -KILL "$p" 2>/dev/null; done
rm -rf -- "$dir"
`

func (c *Cluster) startWatchdog() error {
	cmd := exec.Command("bash", "-c", watchdogScript, "lip-e2e-watchdog")
	// The directory goes in the environment, not the command line, so the
	// watchdog's own processes do not match it.
	cmd.Env = append(os.Environ(), "LIP_WATCHDOG_DIR="+c.Dir)
	// Its own process group: a Ctrl-C on the terminal must not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	c.watchdog, c.wdIn = cmd, in
	return nil
}

// stopWatchdog tells the watchdog that everything is down, so it exits
// without touching anything.
func (c *Cluster) stopWatchdog() {
	if c.wdIn == nil {
		return
	}
	_, _ = io.WriteString(c.wdIn, "stopped\n")
	_ = c.wdIn.Close()
	_ = c.watchdog.Wait()
	c.wdIn = nil
}
