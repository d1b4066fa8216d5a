package certs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

func TestRunSelfManagedRejectsIncompleteOptions(t *testing.T) {
	cases := []struct {
		name string
		o    SelfManagedOptions
		want string
	}{
		{"empty options name every missing field", SelfManagedOptions{}, "Client, Namespace, SecretName, ServiceName, WebhookConfigName, CertDir required"},
		{"negative validity is refused", SelfManagedOptions{Client: &kubernetes.Clientset{}, Namespace: "n", SecretName: "s", ServiceName: "svc", WebhookConfigName: "w", CertDir: "d", CertValidity: -time.Hour}, "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := RunSelfManaged(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteFileAtomicReplacesAndSkipsEqualContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tls.crt")
	if err := writeFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	st1, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(p)
	if !os.SameFile(st1, st2) {
		t.Error("equal content was rewritten (the server would reload for nothing)")
	}
	if err := writeFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	st3, _ := os.Stat(p)
	if string(got) != "two" || st3.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v, want \"two\" 0600", got, st3.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %d entries", len(entries))
	}
}
