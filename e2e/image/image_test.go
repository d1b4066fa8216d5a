// Package image tests the container image `make image` builds: it builds it
// for this machine's platform once (hack/image.sh, as make image does) or
// takes $LIP_IMAGE, and runs it with podman.
package image

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

func TestMain(m *testing.M) {
	cluster.Isolate()
	code := m.Run()
	removeImage()
	os.Exit(code)
}

// nonroot is the image's user (its /etc/passwd names it).
const nonroot = 65532

var imageOnce = sync.OnceValues(buildImage)

// buildImage returns $LIP_IMAGE, or builds the image for this platform into
// a temporary build context.
func buildImage() (string, error) {
	if img := os.Getenv("LIP_IMAGE"); img != "" {
		return img, nil
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	ctxDir, err := os.MkdirTemp("", "lip-image-context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(ctxDir)
	cmd := exec.Command("bash", filepath.Join(root, "hack", "image.sh"))
	cmd.Env = append(os.Environ(),
		"VERSION="+testVersion,
		"IMAGE="+testImage,
		"PLATFORMS=linux/"+runtime.GOARCH,
		"IMAGE_CONTEXT="+ctxDir,
	)
	built = true
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("hack/image.sh: %w\n%s", err, out)
	}
	return testImage + ":" + testVersion, nil
}

// The image this run builds: its own tag, removed again by TestMain, so
// that runs in two clones never share one.
var (
	testVersion = fmt.Sprintf("e2e-%d", os.Getpid())
	testImage   = "localhost/linkerd-inject-policy-e2e"
	built       bool
)

// removeImage removes what buildImage made: the manifest list (both its
// names) and the platform image hack/image.sh tagged.
func removeImage() {
	if !built {
		return
	}
	local := "localhost/linkerd-inject-policy:" + testVersion
	steps := [][]string{
		{"manifest", "rm", testImage + ":" + testVersion},
		{"manifest", "rm", local},
		{"rmi", "-f", local + "-linux-" + runtime.GOARCH},
	}
	for _, args := range steps {
		cmd := exec.Command("buildah", append([]string{"--storage-driver", storageDriver()}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e/image: buildah %s: %v: %s\n", strings.Join(args, " "), err, out)
		}
	}
}

func storageDriver() string {
	if d := os.Getenv("LIP_STORAGE_DRIVER"); d != "" {
		return d
	}
	return "vfs"
}

// podman runs podman with the storage and runtime settings that work on
// these machines (vfs storage, runc, cgroupfs, lowered rlimits).
func podman(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"--storage-driver", storageDriver(), "--runtime", "runc", "--cgroup-manager=cgroupfs"}
	return exec.CommandContext(ctx, "podman", append(base, args...)...)
}

// runArgs are the flags of every container the test runs: host network
// (the test's private namespace), a read-only root filesystem, no rlimits
// above what an unprivileged process may set.
var runArgs = []string{"--network", "host", "--read-only", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"}

func needImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: builds and runs the container image; skipped in -short mode")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (make image installs it: apt-get install -y podman buildah runc)")
	}
	img, err := imageOnce()
	if err != nil {
		t.Fatalf("build the image: %v", err)
	}
	return img
}

func TestImageVersion(t *testing.T) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := podman(ctx, append(append([]string{"run", "--rm"}, runArgs...), img, "version")...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman run %s version: %v\n%s", img, err, out)
	}
	if !strings.Contains(string(out), testVersion) && os.Getenv("LIP_IMAGE") == "" {
		t.Errorf("version output %q does not carry the version the image was built with (%s)", out, testVersion)
	}

	var cfg []struct {
		Config struct {
			User       string
			Entrypoint []string
		}
	}
	out, err = podman(ctx, "image", "inspect", img).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	if err := json.Unmarshal(out, &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("podman image inspect: %v: %s", err, out)
	}
	if cfg[0].Config.User != "65532:65532" {
		t.Errorf("image user = %q, want 65532:65532", cfg[0].Config.User)
	}
	if got := strings.Join(cfg[0].Config.Entrypoint, " "); got != "/linkerd-inject-policy-webhook" {
		t.Errorf("entrypoint = %q, want /linkerd-inject-policy-webhook", got)
	}
	// The full CLI is in the image too.
	out, err = podman(ctx, append(append([]string{"run", "--rm", "--entrypoint", "/linkerd-inject-policy"}, runArgs...), img, "version")...).CombinedOutput()
	if err != nil {
		t.Errorf("the full CLI in the image: %v\n%s", err, out)
	}
}

// serve with a certificate directory mounted read-only answers /readyz and
// a real AdmissionReview on loopback, as user 65532 on a read-only root.
func TestImageServesAdmissionReviews(t *testing.T) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	certDir := t.TempDir()
	ca, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The container's user must read them; the directory is mounted
	// read-only.
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Chown(filepath.Join(certDir, f), nonroot, nonroot); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := cluster.FreePortForTest(t)
	health := "127.0.0.1:" + strconv.Itoa(cluster.FreePortForTest(t))
	metrics := "127.0.0.1:" + strconv.Itoa(cluster.FreePortForTest(t))
	name := fmt.Sprintf("lip-image-e2e-%d", os.Getpid())
	args := append(append([]string{"run", "-d", "--rm", "--name", name, "-v", certDir + ":/certs:ro"}, runArgs...),
		img, "serve", "--cert-dir=/certs", "--host=127.0.0.1", "--port="+strconv.Itoa(port),
		"--health-probe-bind-address="+health, "--metrics-bind-address="+metrics)
	if out, err := podman(ctx, args...).CombinedOutput(); err != nil {
		t.Fatalf("podman run serve: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := podman(context.Background(), "rm", "-f", "-t", "5", name).CombinedOutput(); err != nil {
			t.Errorf("remove container %s: %v\n%s", name, err, out)
		}
	})
	logs := func() string {
		out, _ := podman(context.Background(), "logs", name).CombinedOutput()
		return string(out)
	}

	err = cluster.Poll(ctx, "/readyz of the container", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+health+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("HTTP %d", resp.StatusCode)
	})
	if err != nil {
		t.Fatalf("%v\ncontainer log:\n%s", err, logs())
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d%s", port, cluster.MutatePath), "application/json", bytes.NewReader(jobReview))
	if err != nil {
		t.Fatalf("POST an AdmissionReview: %v\ncontainer log:\n%s", err, logs())
	}
	defer resp.Body.Close()
	var review struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Patch   []byte `json:"patch"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("answer: HTTP %d, %v", resp.StatusCode, err)
	}
	if !review.Response.Allowed || review.Response.UID != "image-e2e" {
		t.Errorf("answer = %+v, want allowed for uid image-e2e", review.Response)
	}
	// A Job is never meshed (the jobs rule): the patch says so.
	// (either a whole annotations map or the one key, depending on what
	// the object had).
	patch := string(review.Response.Patch)
	if !strings.Contains(patch, `"linkerd.io/inject":"disabled"`) && !strings.Contains(patch, `linkerd.io~1inject","value":"disabled"`) {
		t.Errorf("patch %s does not set linkerd.io/inject: disabled", review.Response.Patch)
	}

	// The server process runs as 65532 and the root filesystem is
	// read-only.
	out, err := podman(ctx, "inspect", "--format", "{{.State.Pid}} {{.HostConfig.ReadonlyRootfs}}", name).Output()
	if err != nil {
		t.Fatalf("podman inspect: %v", err)
	}
	var pid int
	var readOnly bool
	if _, err := fmt.Sscan(string(out), &pid, &readOnly); err != nil {
		t.Fatalf("podman inspect: %q: %v", out, err)
	}
	if !readOnly {
		t.Error("the container's root filesystem is not read-only")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "Uid:" {
			if fields[1] != strconv.Itoa(nonroot) {
				t.Errorf("the server runs as uid %s, want %d", fields[1], nonroot)
			}
		}
	}
	if mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mounts", pid)); err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[1] == "/" && !strings.HasPrefix(f[3], "ro") {
				t.Errorf("/ is mounted %s in the container", f[3])
			}
		}
	}
}

// jobReview is an AdmissionReview for creating a Job, as the apiserver sends it.
var jobReview = []byte(`{
  "apiVersion": "admission.k8s.io/v1",
  "kind": "AdmissionReview",
  "request": {
    "uid": "image-e2e",
    "kind": {"group": "batch", "version": "v1", "kind": "Job"},
    "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
    "namespace": "apps",
    "operation": "CREATE",
    "userInfo": {"username": "image-e2e"},
    "object": {
      "apiVersion": "batch/v1",
      "kind": "Job",
      "metadata": {"name": "migrate", "namespace": "apps"},
      "spec": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "migrate", "image": "migrate:1"}]
      }}}
    }
  }
}`)
