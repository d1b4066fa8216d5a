package load

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tlsServer answers 200 with the request body echoed, except bodies "fail"
// (500), and counts the TLS connections it accepted.
func tlsServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "fail" {
			http.Error(w, "asked to fail", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func clientTLS(srv *httptest.Server) *tls.Config {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

func TestRunCountsEveryRequestOverKeepAlive(t *testing.T) {
	srv, conns := tlsServer(t)
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Bodies: [][]byte{[]byte("a"), []byte("b")}, Concurrency: 8, Requests: 400, Warmup: 2, TLS: clientTLS(srv),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 400 || res.Errors != 0 || res.Truncated {
		t.Fatalf("got %d requests, %d errors (first %q), truncated %v; want 400, 0, false", res.Requests, res.Errors, res.FirstError, res.Truncated)
	}
	if len(res.Latencies) != 400 {
		t.Errorf("%d latencies recorded, want 400", len(res.Latencies))
	}
	// Keep-alive: one connection per worker, never one per request.
	if n := conns.Load(); n > 8 {
		t.Errorf("%d TLS connections for 8 workers: keep-alive is not working", n)
	}
}

func TestRunCountsFailures(t *testing.T) {
	srv, _ := tlsServer(t)
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Bodies: [][]byte{[]byte("ok"), []byte("fail")}, Concurrency: 4, Requests: 100, TLS: clientTLS(srv),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || res.Errors != 50 {
		t.Fatalf("got %d requests and %d errors, want 100 and 50 (every other body fails)", res.Requests, res.Errors)
	}
	if !strings.Contains(res.FirstError, "HTTP 500") {
		t.Errorf("first error %q does not name the status", res.FirstError)
	}
}

func TestCheckSeesEveryAnswer(t *testing.T) {
	srv, _ := tlsServer(t)
	var mu sync.Mutex
	seen := map[string]int{}
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Bodies: [][]byte{[]byte("x"), []byte("y")}, Concurrency: 3, Requests: 10, TLS: clientTLS(srv),
		Check: func(status int, body []byte) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(body)]++
			if string(body) == "y" {
				return errors.New("y is wrong")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen["x"] != 5 || seen["y"] != 5 || res.Errors != 5 {
		t.Errorf("checked %v with %d errors, want 5 x, 5 y and 5 errors", seen, res.Errors)
	}
}

func TestRunStopsAtMaxDuration(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Bodies: [][]byte{[]byte("x")}, Concurrency: 2, Requests: 1000, MaxDuration: 200 * time.Millisecond, TLS: clientTLS(srv),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || res.Requests != 0 {
		t.Errorf("a server that never answers: got %d requests, truncated %v; want 0 and true", res.Requests, res.Truncated)
	}
}

func TestOnlyLoopbackIsLoaded(t *testing.T) {
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"IPv4 loopback is allowed", "https://127.0.0.1:9443/mutate", true},
		{"another 127/8 address is allowed", "https://127.1.2.3:9443/mutate", true},
		{"IPv6 loopback is allowed", "https://[::1]:9443/mutate", true},
		{"localhost is allowed", "https://localhost:9443/mutate", true},
		{"a LAN address is refused", "https://192.168.1.10:9443/mutate", false},
		{"a host name is refused", "https://example.com/mutate", false},
		{"the unspecified address is refused", "https://0.0.0.0:9443/", false},
		{"another scheme is refused", "ftp://127.0.0.1/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLoopback(tt.url)
			if (err == nil) != tt.ok {
				t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
	if _, err := Run(context.Background(), Options{URL: "https://10.0.0.1/", Bodies: [][]byte{nil}, Concurrency: 1, Requests: 1}); err == nil {
		t.Error("Run accepted a non-loopback URL")
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 1000; i++ {
		l = append(l, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0.0001, 1}} {
		if got := Percentile(l, c.q); got != c.want {
			t.Errorf("p%v = %d, want %d", c.q*100, got, c.want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing must be 0")
	}
}

func TestMeasuringIsCalledOnceBetweenWarmupAndTheMeasuredRequests(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	var calls, servedAtCall int64
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Bodies: [][]byte{[]byte("a")}, Concurrency: 4, Requests: 40, Warmup: 3, TLS: clientTLS(srv),
		Measuring: func() { calls++; servedAtCall = served.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || servedAtCall != 12 || res.Requests != 40 || served.Load() != 52 {
		t.Fatalf("Measuring called %d times after %d requests; %d measured, %d served; want once after the 12 warm-up requests, 40 measured, 52 served",
			calls, servedAtCall, res.Requests, served.Load())
	}
}
