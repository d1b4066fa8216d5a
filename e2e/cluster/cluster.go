// Package cluster starts a real Kubernetes control plane for the e2e tests and
// `make demo`: etcd and kube-apiserver (through controller-runtime's envtest,
// pointed at binaries built by hack/tools.sh), optionally kube-controller-manager,
// all on free loopback ports inside one temporary directory, inside the
// private network namespace Isolate sets up (Start refuses to run outside it).
//
// The apiserver runs with the admission webhooks enabled and an audit log, so
// tests can see what a real cluster does with a webhook's patch, warnings and
// audit annotations. There are no nodes: Pods stay Pending, which is all the
// tests need (the controller manager still turns Jobs, CronJobs and
// Deployments into Pods).
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options choose what runs besides etcd and kube-apiserver.
type Options struct {
	// ControllerManager also runs kube-controller-manager, so that Jobs,
	// CronJobs, Deployments and StatefulSets get their Pods (and namespaces
	// their default ServiceAccount).
	ControllerManager bool
	// Log receives progress lines from the harness (nil: discard). The
	// components' own output goes to files under Dir/logs.
	Log io.Writer
}

// Cluster is a running control plane. Stop it when done; StartForTest does so
// on test cleanup.
type Cluster struct {
	// Dir holds everything the cluster writes (etcd data, certificates,
	// kubeconfigs, logs); Stop removes it.
	Dir string
	// KubeconfigPath is an admin (system:masters) kubeconfig for the cluster.
	KubeconfigPath string
	// AuditLogPath is the apiserver's audit log (JSON lines).
	AuditLogPath string
	// BinDir holds kube-apiserver, kube-controller-manager, kubectl and etcd.
	BinDir string
	// RESTConfig authenticates as the same admin as KubeconfigPath.
	RESTConfig *rest.Config

	log      io.Writer
	env      *envtest.Environment
	kcm      *exec.Cmd
	kcmDone  chan struct{}
	watchdog *exec.Cmd
	wdIn     io.WriteCloser
	stopOnce sync.Once
	stopErr  error
}

// Binaries the harness needs in BinDir.
var requiredBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}

// Start brings up etcd and kube-apiserver (and kube-controller-manager if
// asked) and returns once the apiserver is ready and the default namespace
// exists. On error everything already started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Cluster, retErr error) {
	if err := CheckIsolated(); err != nil {
		return nil, fmt.Errorf("refusing to start a control plane on this machine's network (%v): call cluster.Isolate() first thing in TestMain or main (docs/testing.md)", err)
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	bin, err := FindBinaries(ctx, logw)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lip-e2e-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w (is the disk full? set TMPDIR elsewhere)", err)
	}
	c := &Cluster{
		Dir:            dir,
		KubeconfigPath: filepath.Join(dir, "kubeconfig"),
		AuditLogPath:   filepath.Join(dir, "audit.log"),
		BinDir:         bin,
		log:            logw,
	}
	defer func() {
		if retErr != nil {
			_ = c.Stop()
		}
	}()
	for _, sub := range []string{"logs", "etcd", "apiserver"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", sub, err)
		}
	}
	if err := c.startWatchdog(); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := c.startControlPlane(); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "cluster: etcd and kube-apiserver ready in %s (dir %s)\n", time.Since(start).Round(time.Millisecond), dir)
	if opts.ControllerManager {
		t0 := time.Now()
		if err := c.startControllerManager(ctx); err != nil {
			return nil, err
		}
		fmt.Fprintf(logw, "cluster: kube-controller-manager ready in %s\n", time.Since(t0).Round(time.Millisecond))
	}
	return c, nil
}

func (c *Cluster) startControlPlane() error {
	apiLog, err := os.Create(filepath.Join(c.Dir, "logs", "kube-apiserver.log"))
	if err != nil {
		return fmt.Errorf("create apiserver log: %w", err)
	}
	etcdLog, err := os.Create(filepath.Join(c.Dir, "logs", "etcd.log"))
	if err != nil {
		return fmt.Errorf("create etcd log: %w", err)
	}
	policy := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return fmt.Errorf("write audit policy: %w", err)
	}

	api := &envtest.APIServer{
		Path:    filepath.Join(c.BinDir, "kube-apiserver"),
		CertDir: filepath.Join(c.Dir, "apiserver"),
		Out:     apiLog,
		Err:     apiLog,
	}
	api.Configure().
		Set("enable-admission-plugins", "NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook").
		Set("audit-policy-file", policy).
		Set("audit-log-path", c.AuditLogPath).
		// The log backend is blocking by default: an event is on disk
		// before the response, so tests can read it right away.
		Set("audit-log-mode", "blocking").
		// Nothing runs in-cluster, so the "kubernetes" Service needs no
		// endpoints (and a loopback advertise address is not allowed).
		Set("endpoint-reconciler-type", "none")
	c.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			APIServer: api,
			Etcd: &envtest.Etcd{
				Path:    filepath.Join(c.BinDir, "etcd"),
				DataDir: filepath.Join(c.Dir, "etcd"),
				Out:     etcdLog,
				Err:     etcdLog,
			},
		},
		BinaryAssetsDirectory:    c.BinDir,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  15 * time.Second,
	}
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("start etcd + kube-apiserver: %w%s", err, c.logTail("kube-apiserver.log", "etcd.log"))
	}
	c.RESTConfig = cfg
	kubeconfig := c.env.KubeConfig
	if len(kubeconfig) == 0 {
		return errors.New("envtest returned no kubeconfig")
	}
	if err := os.WriteFile(c.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// startControllerManager runs kube-controller-manager as its own user and
// waits until its service-account controller has created the default
// ServiceAccount: proof that its informers are synced and controllers run.
func (c *Cluster) startControllerManager(ctx context.Context) error {
	user, err := c.env.AddUser(envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("provision kube-controller-manager user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kube-controller-manager kubeconfig: %w", err)
	}
	kcPath := filepath.Join(c.Dir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		return fmt.Errorf("write kube-controller-manager kubeconfig: %w", err)
	}
	caPath := filepath.Join(c.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caPath, c.env.ControlPlane.APIServer.SecureServing.CA, 0o600); err != nil {
		return fmt.Errorf("write apiserver CA: %w", err)
	}
	logf, err := os.Create(filepath.Join(c.Dir, "logs", "kube-controller-manager.log"))
	if err != nil {
		return fmt.Errorf("create controller-manager log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.BinDir, "kube-controller-manager"),
		"--kubeconfig="+kcPath,
		// No nodes and no cloud: the node controllers would only complain.
		"--controllers=*,-nodeipam,-nodelifecycle",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+filepath.Join(c.Dir, "apiserver", "sa-signer.key"),
		"--root-ca-file="+caPath,
		"--cluster-name=lip-e2e",
		// Serving is only for probes we do not use; port 0 turns it off,
		// so two clusters on one machine never fight over 10257.
		"--secure-port=0",
		// Make Jobs and ReplicaSets quick to react on a busy machine.
		"--concurrent-job-syncs=10",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	c.kcm = cmd
	c.kcmDone = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(c.kcmDone)
	}()

	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			fmt.Fprintf(c.log, "cluster: waiting for kube-controller-manager: %v\n", err)
		}
		select {
		case <-c.kcmDone:
			return fmt.Errorf("kube-controller-manager exited during start-up%s", c.logTail("kube-controller-manager.log"))
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager did not create the default ServiceAccount within 60s%s", c.logTail("kube-controller-manager.log"))
		case <-tick.C:
		}
	}
}

// Stop ends every process of the cluster (gracefully, then by force) and
// removes Dir. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	var errs []error
	if c.kcm != nil && c.kcm.Process != nil {
		_ = syscall.Kill(-c.kcm.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.kcmDone:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.kcm.Process.Pid, syscall.SIGKILL)
			<-c.kcmDone
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop etcd + kube-apiserver: %w", err))
		}
	}
	c.stopWatchdog()
	if c.Dir != "" {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", c.Dir, err))
		}
	}
	return errors.Join(errs...)
}

// Kubectl runs the real kubectl against the cluster.
func (c *Cluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "kubectl"), append([]string{"--kubeconfig=" + c.KubeconfigPath}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	// kubectl colours warnings only on a terminal; keep output plain and
	// independent of the caller's kubectl config.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath, "HOME="+c.Dir)
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), errb.Bytes(), err
}

// Ready reports whether the apiserver answers /readyz with 200.
func (c *Cluster) Ready(ctx context.Context) error {
	rt, err := rest.TransportFor(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.RESTConfig.Host, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("GET /readyz: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /readyz: %s: %s", resp.Status, body)
	}
	return nil
}

// CreateNamespace creates a namespace with the given labels (test helper
// shared by the e2e suite and the demo).
func (c *Cluster) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// logTail returns the last lines of the named component logs, for errors.
func (c *Cluster) logTail(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(c.Dir, "logs", n))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", n, strings.Join(lines, "\n"))
	}
	return b.String()
}

// repoRoot finds the module root from this source file, falling back to
// `go env GOMOD` (binaries built with -trimpath lose the source path).
func repoRoot(ctx context.Context) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if _, err := os.Stat(filepath.Join(root, "hack", "tools.sh")); err == nil {
			return root, nil
		}
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the linkerd-inject-policy module: run from the repository or set LIP_TOOLS_BIN")
	}
	return filepath.Dir(gomod), nil
}

// FindBinaries returns the directory holding the control-plane binaries:
// $LIP_TOOLS_BIN if set, else what `bash hack/tools.sh` prints (which builds
// them on first use, about 13 minutes on 2 cores, then reuses its cache).
func FindBinaries(ctx context.Context, log io.Writer) (string, error) {
	dir := os.Getenv("LIP_TOOLS_BIN")
	if dir == "" {
		root, err := repoRoot(ctx)
		if err != nil {
			return "", fmt.Errorf("find control-plane binaries: %w", err)
		}
		fmt.Fprintf(log, "cluster: LIP_TOOLS_BIN unset; running hack/tools.sh (builds the binaries on first use)\n")
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "tools.sh"))
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = log
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("hack/tools.sh failed: %w (run `make tools` to see why)", err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		dir = strings.TrimSpace(lines[len(lines)-1])
	}
	var missing []string
	for _, b := range requiredBinaries {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("control-plane binaries missing in %s: %s (run `make tools`, or point LIP_TOOLS_BIN at a directory holding them)", dir, strings.Join(missing, ", "))
	}
	return dir, nil
}
