package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func testKey(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune('a'+b)), store.KeySize)))
}

func keyring(t *testing.T, spec string) *store.Keyring {
	t.Helper()
	k, err := store.ParseKeyring(spec)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return k
}

func TestKeyringSealsAndOpens(t *testing.T) {
	t.Parallel()
	k1 := keyring(t, "k1:"+testKey(1))
	const plain, col = "whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==", "webhook_endpoints.secret"
	a, err := k1.Seal(plain, col)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k1.Seal(plain, col)
	if !strings.HasPrefix(a, "sealed:v1:k1:") || strings.Contains(a, "c2VjcmV0") || a == b {
		t.Fatalf("sealed values %q and %q: want the prefix, no plaintext, a fresh nonce each", a, b)
	}
	if got, err := k1.Open(a, col); err != nil || got != plain {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k1.Open(a, "other.column"); err == nil {
		t.Error("a value opened as another column's")
	}
	tampered := []byte(a)
	tampered[len(tampered)-5] ^= 1
	if _, err := k1.Open(string(tampered), col); err == nil {
		t.Error("a tampered value opened")
	}
	if got, err := k1.Open("whsec_legacy", col); err != nil || got != "whsec_legacy" {
		t.Errorf("a plaintext value: %q, %v", got, err)
	}
	if _, err := k1.Open("sealed:v1:k1", col); err == nil {
		t.Error("a malformed value opened")
	}

	// A new key first: it seals, the old one still opens.
	k2 := keyring(t, "k2:"+testKey(2)+", k1:"+testKey(1))
	if got, err := k2.Open(a, col); err != nil || got != plain || k2.Fresh(a) || !k1.Fresh(a) {
		t.Fatalf("old key in a rotated ring: %q, %v, fresh %t", got, err, k2.Fresh(a))
	}
	if c, _ := k2.Seal(plain, col); !strings.HasPrefix(c, "sealed:v1:k2:") || !k2.Fresh(c) || k2.Current() != "k2" {
		t.Errorf("the rotated ring sealed %q", c)
	}
	// Without the key, the error names it.
	only2 := keyring(t, "k2:"+testKey(2))
	if _, err := only2.Open(a, col); !errors.Is(err, store.ErrNoKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("a missing key: %v", err)
	}
	var none *store.Keyring
	if _, err := none.Open(a, col); !errors.Is(err, store.ErrNoKey) {
		t.Errorf("no keyring: %v", err)
	}
}

func TestParseKeyringRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	good := testKey(3)
	for name, spec := range map[string]string{
		"empty":        "",
		"no id":        good,
		"empty id":     ":" + good,
		"odd id":       "k 1:" + good,
		"short key":    "k1:" + base64.StdEncoding.EncodeToString([]byte("short")),
		"not base64":   "k1:" + strings.Repeat("!", 44),
		"duplicate id": "k1:" + good + ",k1:" + testKey(4),
		"trailing":     "k1:" + good + ",",
	} {
		_, err := store.ParseKeyring(spec)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), testKey(4)) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	// URL-safe and unpadded base64 are accepted too.
	raw := []byte(strings.Repeat("\xfb", store.KeySize))
	for _, enc := range []string{base64.URLEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw)} {
		if _, err := store.ParseKeyring("k1:" + enc); err != nil {
			t.Errorf("%q: %v", enc, err)
		}
	}
}

// Signing secrets are stored sealed, read back in the clear, resealed when
// the key rotates, and an endpoint whose key is lost still loads and can be
// given a new secret. Not parallel: it swaps the process's keyring.
func TestWebhookSecretsAreSealedAtRest(t *testing.T) {
	db := storetest.NewDB(t)
	ctx := context.Background()
	t.Cleanup(func() { store.UseKeyring(keyring(t, storetest.SecretKeys)) })
	ten := storetest.Tenant(t, db, "sealed")
	raw := func(id int64) (secret, prev string) {
		t.Helper()
		var p *string
		if err := db.QueryRow(`SELECT secret, previous_secret FROM webhook_endpoints WHERE id = ?`, id).Scan(&secret, &p); err != nil {
			t.Fatal(err)
		}
		if p != nil {
			prev = *p
		}
		return secret, prev
	}

	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	if s, _ := raw(e.ID); !strings.HasPrefix(s, "sealed:v1:test:") || strings.Contains(s, e.Secret) {
		t.Fatalf("stored secret %q: want it sealed with the test key", s)
	}
	rot, err := store.RotateWebhookSecret(ctx, db, ten.ID, e.ID, time.Hour, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if s, p := raw(e.ID); !strings.HasPrefix(s, "sealed:v1:test:") || !strings.HasPrefix(p, "sealed:v1:test:") {
		t.Fatalf("after rotation the stored secrets are %q, %q", s, p)
	}
	got, err := store.GetWebhookEndpoint(ctx, db, ten.ID, e.ID)
	if err != nil || got.Secret != rot.Secret || got.PreviousSecret != e.Secret {
		t.Fatalf("read back: %q / %q (%v), want %q / %q", got.Secret, got.PreviousSecret, err, rot.Secret, e.Secret)
	}

	// A secret stored before sealing existed is read as it is.
	legacy := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	if _, err := db.Exec(`UPDATE webhook_endpoints SET secret = 'whsec_bGVnYWN5LXNlY3JldA==' WHERE id = ?`, legacy.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := store.GetWebhookEndpoint(ctx, db, ten.ID, legacy.ID); err != nil || got.Secret != "whsec_bGVnYWN5LXNlY3JldA==" {
		t.Fatalf("legacy secret read as %q (%v)", got.Secret, err)
	}

	// Rotation of the key: a new one first, reseal, and both endpoints are
	// under it with the same secrets; a second reseal has nothing to do.
	store.UseKeyring(keyring(t, "k2:"+testKey(2)+","+storetest.SecretKeys))
	if n, err := store.ResealWebhookSecrets(ctx, db, 1); err != nil || n != 2 {
		t.Fatalf("reseal: %d changed, %v; want 2", n, err)
	}
	for _, id := range []int64{e.ID, legacy.ID} {
		if s, _ := raw(id); !strings.HasPrefix(s, "sealed:v1:k2:") {
			t.Errorf("endpoint %d after reseal: %q", id, s)
		}
	}
	if _, p := raw(e.ID); !strings.HasPrefix(p, "sealed:v1:k2:") {
		t.Errorf("previous secret after reseal: %q", p)
	}
	if n, err := store.ResealWebhookSecrets(ctx, db, 0); err != nil || n != 0 {
		t.Errorf("second reseal: %d changed, %v", n, err)
	}
	store.UseKeyring(keyring(t, "k2:"+testKey(2)))
	if got, err := store.GetWebhookEndpoint(ctx, db, ten.ID, e.ID); err != nil || got.Secret != rot.Secret || got.PreviousSecret != e.Secret {
		t.Fatalf("after reseal, with only the new key: %q / %q (%v)", got.Secret, got.PreviousSecret, err)
	}

	// The key is lost: the endpoints still load and list, signing fails
	// naming the key, reseal leaves them and says so, and a new secret
	// (without overlap) makes the endpoint usable again.
	store.UseKeyring(keyring(t, "k3:"+testKey(3)))
	lost, err := store.GetWebhookEndpoint(ctx, db, ten.ID, e.ID)
	if err != nil {
		t.Fatalf("an endpoint whose key is lost does not load: %v", err)
	}
	if _, err := lost.SigningSecrets(lost.CreatedAt); !errors.Is(err, store.ErrNoKey) || !strings.Contains(err.Error(), `"k2"`) {
		t.Errorf("signing without the key: %v", err)
	}
	if lost.Secret != "" {
		t.Error("an unopened secret is not empty")
	}
	if list, _, err := store.ListWebhookEndpoints(ctx, db, ten.ID, store.WebhookEndpointFilter{}); err != nil || len(list) != 2 {
		t.Errorf("list without the key: %d endpoints, %v", len(list), err)
	}
	if n, err := store.ResealWebhookSecrets(ctx, db, 0); n != 0 || err == nil || !strings.Contains(err.Error(), "2 endpoint(s)") {
		t.Errorf("reseal without the key: %d, %v", n, err)
	}
	fresh, err := store.RotateWebhookSecret(ctx, db, ten.ID, e.ID, time.Hour, 0, "")
	if err != nil {
		t.Fatalf("rotate without the old key: %v", err)
	}
	got, err = store.GetWebhookEndpoint(ctx, db, ten.ID, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := got.SigningSecrets(got.UpdatedAt)
	if err != nil || len(secrets) != 1 || secrets[0] != fresh.Secret || fresh.PreviousSecret != "" {
		t.Errorf("after a rotation without the old key: %d secrets, %v (previous %q)", len(secrets), err, fresh.PreviousSecret)
	}
}
