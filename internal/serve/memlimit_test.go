package serve

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		want   int64
		wantOK bool
	}{
		{"a cgroup v2 limit is read", map[string]string{"memory.max": "134217728\n"}, 134217728, true},
		{"cgroup v2 without a limit says max", map[string]string{"memory.max": "max\n"}, 0, false},
		{"a cgroup v1 limit is read", map[string]string{"memory/memory.limit_in_bytes": "268435456\n"}, 268435456, true},
		{"cgroup v1 without a limit is a huge number", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup files means no limit", nil, 0, false},
		{"garbage is no limit", map[string]string{"memory.max": "lots\n"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, _, ok := cgroupMemoryLimit(root)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got (%d, %v), want (%d, %v)", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
