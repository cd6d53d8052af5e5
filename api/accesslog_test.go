package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
)

// logLines is a concurrency-safe buffer of JSON log lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// named returns the records whose message is msg.
func (l *logLines) named(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range bytes.Lines(l.buf.Bytes()) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// At info level every request gets one access-log line that names it; at
// warn level (as the benchmarks and quiet deployments run) a 2xx gets none.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level slog.Level
		lines int
	}{{slog.LevelInfo, 1}, {slog.LevelWarn, 0}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			t.Parallel()
			var logs logLines
			b := setup(t, withLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: tc.level}))))
			id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
			res := b.do(t, "GET", path("/api/purchase-orders/%d", id), b.A.AdminToken, nil)
			if res.Status != http.StatusOK {
				t.Fatalf("GET order = %d %s", res.Status, res.Body)
			}
			recs := logs.named(t, "http request")
			if len(recs) != tc.lines {
				t.Fatalf("%d access-log lines at %s, want %d: %v", len(recs), tc.level, tc.lines, recs)
			}
			if tc.lines == 0 {
				return
			}
			want := map[string]any{"level": "INFO", "request_id": res.Header.Get("X-Request-ID"), "method": "GET",
				"route": "/api/purchase-orders/:id", "status": float64(200),
				"tenant_id": float64(b.A.Tenant.ID), "user_id": float64(b.A.Admin.ID), "bytes_out": float64(len(res.Body))}
			for k, v := range want {
				if recs[0][k] != v {
					t.Errorf("access log %s = %v, want %v (line %v)", k, recs[0][k], v, recs[0])
				}
			}
			if d, ok := recs[0]["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("access log duration_ms = %v", recs[0]["duration_ms"])
			}
		})
	}
}
