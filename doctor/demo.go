package doctor

import (
	"context"
	"fmt"
	"io"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// PrintScan scans every namespace of the cluster behind cfg with the
// default policy and writes the table doctor prints, for `make demo`'s
// last step. It returns the result so a caller can check what was found.
func PrintScan(ctx context.Context, cfg *rest.Config, w io.Writer) (Result, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("doctor: client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("doctor: client: %w", err)
	}
	r, err := Run(ctx, client, Options{Dynamic: dyn})
	if err != nil {
		return Result{}, fmt.Errorf("doctor: %w", err)
	}
	fmt.Fprintln(w, "linkerd-inject-policy doctor -A (facts: "+r.Summary.Facts+")")
	for _, n := range r.Summary.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	if err := WriteTable(w, r); err != nil {
		return r, err
	}
	return r, nil
}
