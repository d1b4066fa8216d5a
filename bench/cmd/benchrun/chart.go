package main

import (
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// chartMemory is the memory request and limit of the chart's values.
type chartMemory struct {
	File             string
	Request, Limit   int64 // bytes; 0: not set
	RequestS, LimitS string
}

func readChartMemory(path string) (chartMemory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return chartMemory{}, fmt.Errorf("chart values: %w", err)
	}
	var v struct {
		Resources struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return chartMemory{}, fmt.Errorf("chart values %s: %w", path, err)
	}
	c := chartMemory{File: path, RequestS: v.Resources.Requests["memory"], LimitS: v.Resources.Limits["memory"]}
	for _, f := range []struct {
		s   string
		dst *int64
	}{{c.RequestS, &c.Request}, {c.LimitS, &c.Limit}} {
		if f.s == "" {
			continue
		}
		q, err := resource.ParseQuantity(f.s)
		if err != nil {
			return chartMemory{}, fmt.Errorf("chart values %s: memory %q: %w", path, f.s, err)
		}
		*f.dst = q.Value()
	}
	return c, nil
}
