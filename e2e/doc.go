// Package e2e holds the end-to-end suite: every test runs against a real
// etcd + kube-apiserver + kube-controller-manager (package e2e/cluster) with
// our webhook binary registered the way the Helm chart registers it, and
// creates the objects of examples/ with the real kubectl.
//
// Run it with `make e2e` (which builds the control-plane binaries once into
// a cache and the webhook binary), or `go test ./e2e/...` with LIP_TOOLS_BIN
// and LIP_BINARY set. `go test -short` skips it.
package e2e
