package serve

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// memoryLimitShare is the part of the container's memory limit given to
// the Go heap when GOMEMLIMIT is unset: the rest covers what the runtime
// does not count (stacks, the binary, TLS buffers) with room to spare, so
// the collector works harder before the kernel's OOM killer acts.
const memoryLimitShare = 0.85

// cgroupMemoryLimit reads the memory limit of the cgroup the process runs
// in (v2 memory.max, else v1 memory.limit_in_bytes) under root, normally
// /sys/fs/cgroup. ok is false when there is none ("max", or v1's huge
// "unlimited" value) or it cannot be read.
func cgroupMemoryLimit(root string) (limit int64, source string, ok bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		path := filepath.Join(root, f)
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, path, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// v1 says "no limit" with a number near 2^63 rounded to pages.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, path, false
		}
		return n, path, true
	}
	return 0, "", false
}

// setDefaultMemoryLimit sets the Go memory limit from the container's when
// GOMEMLIMIT is unset, and logs what is in force.
func setDefaultMemoryLimit(log logr.Logger, cgroupRoot string) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	limit, source, ok := cgroupMemoryLimit(cgroupRoot)
	if !ok {
		log.Info("no container memory limit found: Go memory limit not set (set GOMEMLIMIT to choose one)")
		return
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	log.Info("Go memory limit set from the container's memory limit (GOMEMLIMIT unset)",
		"containerLimitBytes", limit, "goMemoryLimitBytes", soft, "share", memoryLimitShare, "source", source)
}
