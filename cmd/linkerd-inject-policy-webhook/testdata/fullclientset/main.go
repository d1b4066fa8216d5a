// Command fullclientset links what the webhook binary must not: client-go's
// whole clientset and its SharedInformerFactory. The webhook binary's test
// builds it to show its symbol check can fail.
package main

import (
	"fmt"
	"os"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func main() {
	c, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f := informers.NewSharedInformerFactory(c, 0)
	_ = f.Core().V1().Namespaces().Informer()
}
