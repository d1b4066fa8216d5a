package fault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/load"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// Two valid configurations that answer the same requests differently in
// two rules at once, so an answer from half of one and half of the other
// matches neither.
const (
	configA = `apiVersion: linkerd-inject-policy.io/v1alpha1
kind: PolicyConfig
defaultMode: enforce
`
	configB = `apiVersion: linkerd-inject-policy.io/v1alpha1
kind: PolicyConfig
defaultMode: enforce
builtinRules:
  jobs:
    strategy: native-sidecar
  opaquePorts:
    ports: [5432]
`
	invalidMode = `apiVersion: linkerd-inject-policy.io/v1alpha1
kind: PolicyConfig
defaultMode: sometimes
`
	invalidField = `apiVersion: linkerd-inject-policy.io/v1alpha1
kind: PolicyConfig
builtinRules:
  jobs:
    strategy: native-sidecar
  opaquePort:
    ports: [5432]
`
)

// configDir lays out a directory as kubelet mounts a ConfigMap: the file is a
// symlink through "..data", which an update swaps atomically.
type configDir struct {
	dir     string
	version int
}

func (c *configDir) path() string { return filepath.Join(c.dir, "config.yaml") }

// swap publishes content the way kubelet does: new directory, new ..data
// symlink renamed over the old one. It runs on the event goroutine, so it
// reports by error rather than t.Fatal.
func (c *configDir) swap(content string) error {
	c.version++
	v := fmt.Sprintf("..v%d", c.version)
	if err := os.Mkdir(filepath.Join(c.dir, v), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, v, "config.yaml"), []byte(content), 0o644); err != nil {
		return err
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(v, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		return err
	}
	if _, err := os.Lstat(c.path()); os.IsNotExist(err) {
		return os.Symlink(filepath.Join("..data", "config.yaml"), c.path())
	}
	return nil
}

// overwrite rewrites the file in place (truncate, then write), as an editor
// would: readers may see it empty or half-written.
func (c *configDir) overwrite(content string) error {
	return os.WriteFile(c.path(), []byte(content), 0o644)
}

// normalize makes equal answers compare equal as strings: the JSON patch is
// replaced by the document it produces from the request's object (a patch's
// operations may come in any order), and the JSON is re-encoded.
func normalize(answer []byte, objects map[string][]byte) (string, error) {
	var v map[string]any
	if err := json.Unmarshal(answer, &v); err != nil {
		return "", err
	}
	resp, ok := v["response"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("no response in %.200s", answer)
	}
	if p, ok := resp["patch"].(string); ok {
		raw, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return "", fmt.Errorf("patch is not base64: %w", err)
		}
		uid, _ := resp["uid"].(string)
		obj, ok := objects[uid]
		if !ok {
			return "", fmt.Errorf("answer for unknown uid %q", uid)
		}
		patch, err := jsonpatch.DecodePatch(raw)
		if err != nil {
			return "", fmt.Errorf("decode patch: %w", err)
		}
		patched, err := patch.Apply(obj)
		if err != nil {
			return "", fmt.Errorf("apply patch: %w", err)
		}
		var doc any
		if err := json.Unmarshal(patched, &doc); err != nil {
			return "", err
		}
		resp["patch"] = doc
	}
	out, err := json.Marshal(v)
	return string(out), err
}

// requestObjects maps each body's uid to its object, for normalize.
func requestObjects(t testing.TB, bodies [][]byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, b := range bodies {
		var r struct {
			Request struct {
				UID    string          `json:"uid"`
				Object json.RawMessage `json:"object"`
			} `json:"request"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		out[r.Request.UID] = r.Request.Object
	}
	return out
}

// expectedAnswers computes, in process, what each whole configuration
// answers to each body.
func expectedAnswers(t *testing.T, bodies [][]byte, configs map[string]string) map[string]string {
	t.Helper()
	want := map[string]string{}
	objects := requestObjects(t, bodies)
	for name, content := range configs {
		cfg, err := policy.LoadConfig([]byte(content))
		if err != nil {
			t.Fatalf("config %s: %v", name, err)
		}
		h, err := webhook.NewHandler(webhook.HandlerOptions{Config: webhook.NewConfigStore(cfg)})
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range bodies {
			req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("config %s: in-process answer HTTP %d: %s", name, rec.Code, rec.Body)
			}
			n, err := normalize(rec.Body.Bytes(), objects)
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := want[n]; dup {
				t.Fatalf("configs %s and %s answer a request identically: the test could not tell them apart", other, name)
			}
			want[n] = name
		}
	}
	return want
}

// rotateCert copies the certificate of src over the served one, key first,
// in place: the watcher may see a mismatched pair for a moment. It returns
// the new leaf certificate (DER).
func rotateCert(src, dst string) ([]byte, error) {
	for _, f := range []string{"tls.key", "tls.crt"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o600); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "tls.crt"))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s/tls.crt is not PEM", src)
	}
	return block.Bytes, nil
}

// servedCert is the leaf certificate a fresh TLS handshake gets.
func servedCert(addr string, cfg *tls.Config) ([]byte, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw, nil
}

func TestConfigAndCertificateChangesUnderLoad(t *testing.T) {
	const (
		clients     = 64
		perClient   = 60  // minimum requests per client
		eventEvery  = 300 // requests between two changes
		batchPerCli = 20  // requests per client per load batch (each batch opens new connections)
	)
	// Serving certificates: the first and two rotations, all trusted.
	certDir := t.TempDir()
	pool := x509.NewCertPool()
	writeCert(t, certDir, pool)
	rotations := []string{t.TempDir(), t.TempDir()}
	for _, d := range rotations {
		writeCert(t, d, pool)
	}
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	cfgDir := &configDir{dir: t.TempDir()}
	if err := cfgDir.swap(configA); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOptions{certDir: certDir, configPath: cfgDir.path()})

	bodies := [][]byte{
		reviewBody(t, "uid-job", jobKind, "batch", jobObject("nightly")),
		reviewBody(t, "uid-pod", podKind, "apps", podObject("db", nil, 3306)),
	}
	want := expectedAnswers(t, bodies, map[string]string{"A": configA, "B": configB})
	objects := requestObjects(t, bodies)

	var (
		answered atomic.Int64
		mu       sync.Mutex
		seen     = map[string]int{}
		wrong    []string
	)
	check := func(status int, body []byte) error {
		answered.Add(1)
		if status != http.StatusOK {
			return fmt.Errorf("HTTP %d: %.200s", status, body)
		}
		n, err := normalize(body, objects)
		if err != nil {
			return fmt.Errorf("answer is not JSON: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		cfg, ok := want[n]
		if !ok {
			if len(wrong) < 5 {
				wrong = append(wrong, n)
			}
			return fmt.Errorf("answer matches no whole configuration: %.300s", n)
		}
		seen[cfg]++
		return nil
	}

	// probe asks one request outside the load and says which config answered.
	probeClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	probe := func() string {
		resp, err := probeClient.Post(s.url, "application/json", bytes.NewReader(bodies[0]))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		n, _ := normalize(buf.Bytes(), objects)
		return want[n]
	}
	// waitFor runs on the event goroutine: it reports by error, not t.Fatal.
	waitFor := func(what string, cond func() bool) error {
		deadline := time.Now().Add(45 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				return fmt.Errorf("gave up waiting for %s\nserver log:\n%s", what, s.log.tail(3000))
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
	// failures is -1 when the metrics cannot be read (never "more than before").
	failures := func() float64 {
		v, err := s.metricValue("linkerd_inject_policy_config_reload_failures_total")
		if err != nil {
			return -1
		}
		return v
	}

	type event struct {
		name string
		do   func() error
	}
	valid := func(name, content string, publish func(string) error) event {
		return event{name, func() error {
			if err := publish(content); err != nil {
				return err
			}
			return waitFor("config "+name+" in force", func() bool { return probe() == name })
		}}
	}
	invalid := func(name, content string, publish func(string) error) event {
		return event{name, func() error {
			inForce := probe()
			before := failures()
			if before < 0 {
				return fmt.Errorf("cannot read the server's metrics")
			}
			if err := publish(content); err != nil {
				return err
			}
			if err := waitFor("the rejection of "+name, func() bool { return failures() > before }); err != nil {
				return err
			}
			if got := probe(); got != inForce {
				return fmt.Errorf("after the invalid %s, config %q answers; want %q still in force", name, got, inForce)
			}
			return nil
		}}
	}
	rotate := func(i int) event {
		return event{fmt.Sprintf("certificate rotation %d", i+1), func() error {
			der, err := rotateCert(rotations[i], certDir)
			if err != nil {
				return err
			}
			addr := fmt.Sprintf("127.0.0.1:%d", s.port)
			return waitFor("the rotated certificate to be served", func() bool {
				got, err := servedCert(addr, tlsConfig)
				return err == nil && bytes.Equal(got, der)
			})
		}}
	}
	events := []event{
		valid("B", configB, cfgDir.swap),
		invalid("invalid mode (symlink swap)", invalidMode, cfgDir.swap),
		rotate(0),
		valid("A", configA, cfgDir.overwrite),
		invalid("unknown field (in place)", invalidField, cfgDir.overwrite),
		valid("B", configB, cfgDir.swap),
		rotate(1),
		invalid("empty file (symlink swap)", "", cfgDir.swap),
		valid("A", configA, cfgDir.swap),
		invalid("invalid mode (in place)", invalidMode, cfgDir.overwrite),
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		eventsDone atomic.Bool
		eventErr   error
	)
	go func() {
		defer eventsDone.Store(true)
		for i, e := range events {
			threshold := int64((i + 1) * eventEvery)
			for answered.Load() < threshold && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			if ctx.Err() != nil {
				return
			}
			t.Logf("after %d answers: %s", answered.Load(), e.name)
			if err := e.do(); err != nil {
				eventErr = fmt.Errorf("%s: %w", e.name, err)
				return
			}
		}
	}()

	var total, failed int
	var firstErr string
	for batch := 0; !eventsDone.Load() || total < clients*perClient; batch++ {
		if ctx.Err() != nil {
			t.Fatalf("load and changes did not finish in time (%d answers, events done: %v)", total, eventsDone.Load())
		}
		res, err := load.Run(ctx, load.Options{
			URL: s.url, Bodies: bodies, Concurrency: clients, Requests: clients * batchPerCli,
			TLS: tlsConfig, Check: check, MaxDuration: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		total += res.Requests
		failed += res.Errors
		if firstErr == "" {
			firstErr = res.FirstError
		}
		if total >= clients*perClient {
			// Enough load counted: keep it coming in bursts while a change
			// waits for the reloader's periodic re-read, without burning the CPU.
			time.Sleep(50 * time.Millisecond)
		}
	}
	if eventErr != nil {
		t.Fatal(eventErr)
	}
	t.Logf("%d answers: %v", total, seen)
	if failed != 0 {
		t.Errorf("%d of %d admissions failed or were wrong; first: %s", failed, total, firstErr)
	}
	for _, w := range wrong {
		t.Errorf("half-applied or unknown answer: %s", w)
	}
	if seen["A"] == 0 || seen["B"] == 0 {
		t.Errorf("answers per config %v: both configurations must have served under load", seen)
	}
	if got := failures(); got < 4 {
		t.Errorf("%v rejected reloads counted, want at least the 4 invalid files", got)
	}
	if s.proc.Exited() {
		t.Errorf("server exited:\n%s", s.log.tail(3000))
	}
}
