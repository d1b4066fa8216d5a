package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// decisionLines posts each body to a handler logging through log and
// returns the fields of its decision lines, without the fields each
// logger adds of its own (time, level, logger name, caller).
func decisionLines(t *testing.T, log logr.Logger, logs *bytes.Buffer, bodies [][]byte) []map[string]any {
	t.Helper()
	h, err := NewHandler(HandlerOptions{Config: NewConfigStore(policy.DefaultConfig()), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if a := post(t, h, b); a.status != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != "decision" {
			continue
		}
		for _, k := range []string{"ts", "level", "v", "logger", "caller"} {
			delete(m, k)
		}
		out = append(out, m)
	}
	return out
}

// serve logs through zapr, and the handler then writes its decision lines
// to the zap logger directly: they must be the lines logr would write.
func TestDecisionLinesThroughZapAreTheLogrLines(t *testing.T) {
	r := reviewFixture(t, "job")
	dry := true
	r.Request.DryRun = &dry
	bodies := [][]byte{
		readReview(t, "job"),               // patched
		mustJSON(t, r),                     // patched, dry run
		readReview(t, "job-user-override"), // unchanged: at debug only
	}
	for _, tt := range []struct {
		name      string
		verbosity int
		zapLevel  zapcore.Level
		lines     int
	}{
		{"at info, the changes", 0, zapcore.InfoLevel, 2},
		{"at debug, every decision", 1, zapcore.DebugLevel, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var viaLogr, viaZap bytes.Buffer
			lr := funcr.NewJSON(func(obj string) { viaLogr.WriteString(obj + "\n") }, funcr.Options{Verbosity: tt.verbosity})
			want := decisionLines(t, lr.WithName("admission"), &viaLogr, bodies)

			enc := zap.NewProductionEncoderConfig()
			core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&viaZap), tt.zapLevel)
			z := zapr.NewLogger(zap.New(core, zap.AddCaller())).WithName("admission")
			got := decisionLines(t, z, &viaZap, bodies)

			if len(want) != tt.lines {
				t.Fatalf("logr wrote %d decision lines, want %d:\n%s", len(want), tt.lines, viaLogr.String())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("zap decision lines differ from logr's:\n got %v\nwant %v", got, want)
			}
			if !strings.Contains(viaZap.String(), `"logger":"admission"`) {
				t.Errorf("zap decision lines lost the logger name:\n%s", viaZap.String())
			}
		})
	}
}
