package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// goBench is one Go benchmark over all its -count runs.
type goBench struct {
	Name   string // e.g. EvaluatePatch/Deployment (no Benchmark prefix, no -GOMAXPROCS suffix)
	NsOp   []float64
	BOp    []float64
	Allocs []float64
}

// parseGoBench reads `go test -bench -benchmem` output (the format
// benchstat reads) and groups the runs of each benchmark in input order.
func parseGoBench(r io.Reader) ([]*goBench, error) {
	var out []*goBench
	byName := map[string]*goBench{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		b := byName[name]
		if b == nil {
			b = &goBench{Name: name}
			byName[name] = b
			out = append(out, b)
		}
		// Value/unit pairs follow the iteration count.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", sc.Text(), err)
			}
			switch f[i+1] {
			case "ns/op":
				b.NsOp = append(b.NsOp, v)
			case "B/op":
				b.BOp = append(b.BOp, v)
			case "allocs/op":
				b.Allocs = append(b.Allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is (max-min)/median in percent, benchstat's "±" in spirit.
func spread(xs []float64) float64 {
	m := median(xs)
	if m == 0 || len(xs) < 2 {
		return 0
	}
	return (slices.Max(xs) - slices.Min(xs)) / 2 / m * 100
}

func find(benches []*goBench, name string) *goBench {
	for _, b := range benches {
		if b.Name == name {
			return b
		}
	}
	return nil
}
