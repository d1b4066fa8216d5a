package certs

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
)

// SelfManagedOptions configure the self-managed serving-certificate mode.
type SelfManagedOptions struct {
	Client            kubernetes.Interface
	Namespace         string // the webhook's own namespace
	SecretName        string // Secret holding ca.crt, tls.crt, tls.key
	ServiceName       string // the webhook Service: DNS names of the serving cert
	WebhookConfigName string // MutatingWebhookConfiguration whose caBundle we own
	CertDir           string // where tls.crt/tls.key are written for the server
	CAValidity        time.Duration
	CertValidity      time.Duration
	CheckInterval     time.Duration
	Now               func() time.Time
	Log               logr.Logger
}

// RunSelfManaged ensures the Secret, files and caBundle once (returning an
// error if that fails), then keeps rotating in the background until ctx ends.
func RunSelfManaged(ctx context.Context, o SelfManagedOptions) error {
	return errors.New("self-managed certificates: not implemented yet")
}
