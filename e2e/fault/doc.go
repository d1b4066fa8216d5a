// Package fault holds the load and fault tests of the webhook binary: hostile
// input, configuration and certificate changes under concurrent load, and
// SIGKILL of the server while a real kube-apiserver (failurePolicy Ignore)
// keeps admitting objects. They run the real `linkerd-inject-policy serve`
// process ($LIP_BINARY, else built on the fly) and assert counts, never times.
package fault
