// Package certs manages certificates: the webhook's own serving certificate
// (self-managed mode: a CA and serving cert in a Secret, the caBundle of our
// MutatingWebhookConfiguration, rotation) and Linkerd's identity trust anchor
// and issuer used by bootstrap. Validity checks are pure functions that take
// the time as a parameter; nothing here calls os.Exit.
package certs
