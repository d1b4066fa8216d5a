package cluster

import "testing"

// Callers ask for several ports before they listen on any (a webhook's,
// its health probe's and its metrics'): the same port twice made a server
// fail to bind its second listener.
func TestFreePortNeverGivesTheSamePortTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		p := FreePortForTest(t)
		if seen[p] {
			t.Fatalf("port %d given out twice", p)
		}
		seen[p] = true
	}
}
