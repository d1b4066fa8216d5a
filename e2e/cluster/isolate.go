package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Every control plane this package starts, and every server a test runs
// against it, lives in one private network namespace that has nothing but
// loopback. The apiserver dials a Service's ClusterIP for a service-form
// webhook or APIService; with no kube-proxy nothing on the machine owns that
// address, so on the host the connection would leave the machine through the
// default route. Inside the namespace:
//
//   - 10.0.0.0/8 (the apiserver's --service-cluster-ip-range, 10.0.0.0/24, and
//     more) is a local address on lo: a ClusterIP nobody listens on refuses at
//     once, and a test server may listen on one to be reached there;
//   - kube-apiserver picks its advertise address from the interface of the
//     default route, so there is one, into lo, from 192.0.2.1 (TEST-NET-1,
//     assigned to lo);
//   - a policy rule ahead of the main table answers every other destination
//     with "no route to host", so a connect to an outside address fails at
//     once instead of waiting for a SYN that goes nowhere.
//
// IPv6 has only ::1 and no routes: every other IPv6 destination is
// unreachable.
const (
	// AdvertiseAddr is the address of the namespace's default route and so
	// the apiserver's advertise address.
	AdvertiseAddr = "192.0.2.1"
	// LocalServiceCIDR is made local inside the namespace; it holds the
	// apiserver's Service ClusterIP range.
	LocalServiceCIDR = "10.0.0.0/8"

	// routeTable holds only "unreachable default"; the rule of priority
	// rulePref consults it after the local table, before the main one.
	routeTable = "1818"
	rulePref   = "100"

	// netnsEnv tells a process where it stands: netnsSetUp for the process
	// Isolate just started in a fresh namespace (it configures lo first),
	// netnsReady for it and everything it starts afterwards.
	netnsEnv   = "LIP_NETNS"
	netnsSetUp = "set-up"
	netnsReady = "ready"
)

// networkSetup is fed to `ip -batch -` inside the new namespace.
var networkSetup = strings.Join([]string{
	"link set lo up",
	"address add " + AdvertiseAddr + "/32 dev lo",
	"route add local " + LocalServiceCIDR + " dev lo",
	"route add default dev lo src " + AdvertiseAddr,
	"route add unreachable default table " + routeTable,
	"rule add pref " + rulePref + " table " + routeTable,
}, "\n") + "\n"

// errNoPrivilege is what a run without CAP_SYS_ADMIN gets, instead of ever
// running a control plane on the host's network.
const errNoPrivilege = "the e2e control plane runs in a private network namespace " +
	"(only loopback, so no test traffic can leave the machine; see docs/testing.md), " +
	"and creating one needs root (CAP_SYS_ADMIN): run as root, as CI does, " +
	"or skip the e2e tests with -short (make unit)"

// Isolate puts the calling program into a private network namespace set up
// as described above: it re-executes the current binary, with the same
// arguments, standard streams and environment, inside a new namespace and
// exits with its exit code. In the re-executed process (and every process
// it starts) Isolate sets up loopback and returns at once. Call it first
// thing in TestMain (before m.Run) or main, in every program that starts a
// control plane; Start refuses to run anywhere else.
//
// Before entering, while the network is still there, it resolves the
// control-plane binaries (FindBinaries, which may build them; the result is
// passed on as LIP_TOOLS_BIN) and downloads modules (module@version, e.g.
// ECKModule) into the module cache, for tests that read files from Go
// modules. A test binary run with -short starts no control plane and is
// not isolated. Any failure, including a missing privilege, ends the
// program with one line on stderr: it never runs unisolated.
func Isolate(modules ...string) {
	if err := isolate(modules); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/cluster: %v\n", err)
		os.Exit(1)
	}
}

func isolate(modules []string) error {
	switch os.Getenv(netnsEnv) {
	case netnsSetUp:
		if err := setUpNetwork(); err != nil {
			return err
		}
		if err := os.Setenv(netnsEnv, netnsReady); err != nil {
			return err
		}
		if err := CheckIsolated(); err != nil {
			return fmt.Errorf("the private network namespace is not as it should be: %w", err)
		}
		return nil
	case netnsReady:
		if CheckIsolated() == nil {
			return nil
		}
		// The marker came from elsewhere (an exported variable):
		// isolate for real.
	}
	if shortTest() {
		return nil
	}
	if err := prepareOutside(modules); err != nil {
		return err
	}
	return runIsolated()
}

// shortTest reports whether this is a test binary run with -short.
func shortTest() bool {
	f := flag.Lookup("test.short")
	if f == nil {
		return false
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	return f.Value.String() == "true"
}

// prepareOutside does what needs the network before there is none.
func prepareOutside(modules []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if os.Getenv("LIP_TOOLS_BIN") == "" {
		dir, err := FindBinaries(ctx, os.Stderr)
		if err != nil {
			return err
		}
		if err := os.Setenv("LIP_TOOLS_BIN", dir); err != nil {
			return err
		}
	}
	if len(modules) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download"}, modules...)...)
	// Outside any module, so our go.mod is neither read nor changed.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod download %s: %w: %s (is the Go module proxy reachable?)", strings.Join(modules, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runIsolated re-executes this binary in a new network namespace, waits for
// it and exits as it did. It returns only if the process cannot start.
func runIsolated() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run it isolated: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"="+netnsSetUp)
	// If this process dies (go test kills it on its own timeout), the
	// isolated one goes too; the cluster watchdog then cleans up after
	// it. Pdeathsig follows the thread that started the child: keep it.
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	// Signals sent to this process alone (go test's SIGQUIT on a timeout,
	// a SIGTERM) go on to the isolated one; a terminal's Ctrl-C reaches
	// both anyway.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return errors.New(errNoPrivilege)
		}
		return fmt.Errorf("start %s in a private network namespace: %w", exe, err)
	}
	if flag.Lookup("test.short") == nil {
		// make demo (DEMO_KEEP=1) leaves a cluster to explore: only a
		// shell in the namespace reaches it.
		fmt.Fprintf(os.Stderr, "e2e/cluster: %s runs in a private network namespace (only loopback); from another shell, reach it with: nsenter --net=/proc/%d/ns/net COMMAND\n", filepath.Base(os.Args[0]), cmd.Process.Pid)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(os.Stderr, "e2e/cluster: the isolated %s ended by signal: %v\n", os.Args[0], ws.Signal())
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ee.ExitCode())
	}
	return fmt.Errorf("wait for the isolated %s: %w", exe, err)
}

// setUpNetwork configures lo and the routes, inside the new namespace.
func setUpNetwork() error {
	ip, err := exec.LookPath("ip")
	if err != nil {
		for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"} {
			if _, serr := os.Stat(p); serr == nil {
				ip, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return errors.New("set up the private network namespace: no `ip` command (install iproute2)")
	}
	cmd := exec.Command(ip, "-batch", "-")
	cmd.Stdin = strings.NewReader(networkSetup)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("set up the private network namespace (ip -batch): %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CheckIsolated returns nil if the calling process is in a network namespace
// set up as Isolate does: only loopback interfaces, no route to an outside
// address, the ClusterIP range local. It sends no packet (UDP "connects"
// only look up a route).
func CheckIsolated() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("network interface %s is not loopback", i.Name)
		}
	}
	if c, err := net.Dial("udp4", "192.0.2.10:443"); err == nil {
		c.Close()
		return errors.New("an outside address (192.0.2.10) has a route")
	}
	c, err := net.Dial("udp4", "10.0.0.1:443")
	if err != nil {
		return fmt.Errorf("the ClusterIP range is not local: %w", err)
	}
	c.Close()
	return nil
}
