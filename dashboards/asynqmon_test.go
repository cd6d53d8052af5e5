package dashboards

import (
	"strings"
	"testing"
)

func TestFormatPayloadRedactsSecrets(t *testing.T) {
	out := FormatPayload("x", []byte(`{"event_id": 7, "secret": "whsec_abc", "nested": {"Api_Token": "t0k", "ok": [1, {"password": "pw"}]}, "amount": "12.50"}`))
	for _, leaked := range []string{"whsec_abc", "t0k", `"pw"`} {
		if strings.Contains(out, leaked) {
			t.Errorf("payload view leaks %s:\n%s", leaked, out)
		}
	}
	for _, kept := range []string{`"event_id": 7`, `"amount": "12.50"`, "[redacted]", "\n  "} {
		if !strings.Contains(out, kept) {
			t.Errorf("payload view lacks %s:\n%s", kept, out)
		}
	}
	if got := FormatPayload("x", []byte("\x00\x01binary")); got != "(8 bytes, not JSON)" {
		t.Errorf("binary payload shown as %q", got)
	}
}
