package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/webhook"
)

func verifier(t testing.TB, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standard webhooks verifier: %v", err)
	}
	return wh
}

// Signatures verify with the reference Standard Webhooks library, one per
// secret, any of which the receiver may hold.
func TestSignVerifiesWithStandardWebhooks(t *testing.T) {
	t.Parallel()
	oldSecret, _ := store.NewWebhookSecret()
	newSecret, _ := store.NewWebhookSecret()
	otherSecret, _ := store.NewWebhookSecret()
	body := []byte(`{"type":"vendor.created","timestamp":"2026-01-02T03:04:05Z","data":{"id":1}}`)
	ts := time.Now()
	sig, err := webhook.Sign([]string{newSecret, oldSecret}, "msg_1_2", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(sig, " "); len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("signature header %q, want two space-separated v1 signatures", sig)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1_2")
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	for _, s := range []string{newSecret, oldSecret} {
		if err := verifier(t, s).Verify(body, h); err != nil {
			t.Errorf("verify: %v", err)
		}
	}
	if err := verifier(t, otherSecret).Verify(body, h); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("verify with another secret = %v, want no matching signature", err)
	}
	if err := verifier(t, newSecret).Verify(append(body, ' '), h); err == nil {
		t.Error("a changed body verified")
	}
	if _, err := webhook.Sign([]string{"not-a-secret"}, "msg", ts, body); err == nil {
		t.Error("signed with a malformed secret")
	}
}
