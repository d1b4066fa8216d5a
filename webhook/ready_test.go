package webhook

import (
	"errors"
	"net/http"
	"testing"
)

func TestTheWebhookServersReadinessIsCheckedUntilItFirstPasses(t *testing.T) {
	results := []error{errors.New("not started"), errors.New("not reachable"), nil, errors.New("would fail again")}
	calls := 0
	check := onceReady(func(*http.Request) error {
		err := results[calls]
		calls++
		return err
	})
	var got []bool
	for range 6 {
		got = append(got, check(nil) == nil)
	}
	want := []bool{false, false, true, true, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("readiness %v, want %v", got, want)
		}
	}
	if calls != 3 {
		t.Errorf("the server's own check ran %d times, want 3 (until it first passed)", calls)
	}
}
