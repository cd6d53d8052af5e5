package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

type webhookJSON struct {
	ID                      int64      `json:"id"`
	URL                     string     `json:"url"`
	Description             string     `json:"description"`
	EventTypes              []string   `json:"event_types"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason"`
	DisabledAt              *time.Time `json:"disabled_at"`
	SecretRotatedAt         *time.Time `json:"secret_rotated_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	Secret                  string     `json:"secret"`
}

type webhookDeliveryJSON struct {
	ID         int64  `json:"id"`
	EndpointID int64  `json:"endpoint_id"`
	EventID    int64  `json:"event_id"`
	EventType  string `json:"event_type"`
	WebhookID  string `json:"webhook_id"`
	State      string `json:"state"`
	Round      int    `json:"round"`
	Attempts   int    `json:"attempts"`
	AttemptLog []struct {
		Attempt         int    `json:"attempt"`
		StatusCode      int    `json:"status_code"`
		ResponseExcerpt string `json:"response_excerpt"`
		Error           string `json:"error"`
		DurationMS      int64  `json:"duration_ms"`
	} `json:"attempt_log"`
}

// createWebhook creates an endpoint of tenant f through the API.
func (b *testBundle) createWebhook(t *testing.T, f tenantFixture, body obj) webhookJSON {
	t.Helper()
	res := b.do(t, "POST", "/api/webhooks", f.AdminToken, body)
	if res.Status != http.StatusCreated {
		t.Fatalf("create webhook = %d %s", res.Status, res.Body)
	}
	var w webhookJSON
	res.decode(t, &w)
	return w
}

func validWebhook() obj {
	return obj{"url": "https://hooks.example.com/iacc", "event_types": []string{store.EventPurchaseOrderCreated, store.EventInvoiceCreated},
		"description": "ERP inbox"}
}

// The secret is returned by the creation, and never again: not by reads,
// lists, updates or the audit log.
func TestCreateWebhookReturnsTheSecretOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "POST", "/api/webhooks", b.A.AdminToken, validWebhook())
	if res.Status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.Status, res.Body)
	}
	var w webhookJSON
	res.decode(t, &w)
	if !strings.HasPrefix(w.Secret, "whsec_") || len(w.Secret) < 6+32 || w.ID <= 0 || !w.Enabled ||
		!slices.Equal(w.EventTypes, []string{store.EventInvoiceCreated, store.EventPurchaseOrderCreated}) || w.URL != "https://hooks.example.com/iacc" {
		t.Fatalf("created = %+v", w)
	}
	if got, want := res.Header.Get("Location"), "/api/webhooks/"+strconv.FormatInt(w.ID, 10); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	acct := b.createUser(t, b.A, store.RoleAccounting)
	for _, r := range []request{
		{Method: "GET", Path: path("/api/webhooks/%d", w.ID), Token: b.A.AdminToken},
		{Method: "GET", Path: path("/api/webhooks/%d", w.ID), Token: acct},
		{Method: "GET", Path: "/api/webhooks", Token: b.A.AdminToken},
		{Method: "PATCH", Path: path("/api/webhooks/%d", w.ID), Token: b.A.AdminToken, Body: obj{"description": "renamed"}},
		{Method: "GET", Path: "/api/audit-log", Token: b.A.AdminToken},
	} {
		res := b.send(t, r)
		if res.Status != http.StatusOK {
			t.Fatalf("%s %s = %d %s", r.Method, r.Path, res.Status, res.Body)
		}
		if bytes.Contains(res.Body, []byte("whsec_")) || bytes.Contains(res.Body, []byte(`"secret"`)) {
			t.Errorf("%s %s shows the secret: %s", r.Method, r.Path, res.Body)
		}
	}
	var list struct {
		Data []webhookJSON `json:"data"`
		Meta listMetaJSON  `json:"meta"`
	}
	b.do(t, "GET", "/api/webhooks", b.A.AdminToken, nil).decode(t, &list)
	if list.Meta.Total != 1 || len(list.Data) != 1 || list.Data[0].ID != w.ID || list.Data[0].Description != "renamed" {
		t.Errorf("list = %+v", list)
	}
	if n := b.queryInt(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'webhook_endpoint.create' AND entity_id = ? AND actor_id = ?`, w.ID, b.A.Admin.ID); n != 1 {
		t.Errorf("%d audit entries for the creation", n)
	}
	// Created disabled on request.
	off := b.createWebhook(t, b.A, obj{"url": "http://hooks.example.com:8080/x", "event_types": []string{store.EventVendorCreated}, "enabled": false})
	if off.Enabled || off.DisabledReason != "manual" {
		t.Errorf("created disabled = %+v", off)
	}
}

// Bad input is a 422 naming the field, and creates nothing.
func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	with := func(k string, v any) obj {
		o := validWebhook()
		if v == nil {
			delete(o, k)
		} else {
			o[k] = v
		}
		return o
	}
	cases := []struct {
		name  string
		body  obj
		field string
	}{
		{"ftp URL", with("url", "ftp://hooks.example.com/x"), "url"},
		{"javascript URL", with("url", "javascript:alert(1)"), "url"},
		{"relative URL", with("url", "/hooks"), "url"},
		{"no host", with("url", "https:///path"), "url"},
		{"credentials", with("url", "https://user:pw@hooks.example.com/"), "url"},
		{"fragment", with("url", "https://hooks.example.com/#x"), "url"},
		{"too long", with("url", "https://hooks.example.com/"+strings.Repeat("a", 2048)), "url"},
		{"missing URL", with("url", nil), "url"},
		{"no event types", with("event_types", []string{}), "event_types"},
		{"missing event types", with("event_types", nil), "event_types"},
		{"unknown event type", with("event_types", []string{"purchase_order.created", "order.exploded"}), "event_types"},
		{"internal event type", with("event_types", []string{store.EventWebhookTest}), "event_types"},
		{"long description", with("description", strings.Repeat("é", 501)), "description"},
		{"unknown field", with("secret", "whsec_mine"), "secret"},
		{"wrong type", with("enabled", "yes"), "enabled"},
	}
	for _, c := range cases {
		wantProblem(t, b.do(t, "POST", "/api/webhooks", b.A.AdminToken, c.body), http.StatusUnprocessableEntity, c.field)
	}
	if n := b.queryInt(t, `SELECT COUNT(*) FROM webhook_endpoints`); n != 0 {
		t.Errorf("%d endpoints created by bad requests", n)
	}
	// 500 characters are fine, whatever their bytes.
	b.createWebhook(t, b.A, with("description", strings.Repeat("é", 500)))

	w := b.createWebhook(t, b.A, validWebhook())
	for _, body := range []obj{{"url": "gopher://x"}, {"event_types": []string{}}, {"description": strings.Repeat("x", 501)}, {"nope": 1}} {
		wantProblem(t, b.do(t, "PATCH", path("/api/webhooks/%d", w.ID), b.A.AdminToken, body), http.StatusUnprocessableEntity)
	}
	for _, body := range []obj{{"overlap_seconds": -1}, {"overlap_seconds": 7*24*3600 + 1}} {
		wantProblem(t, b.do(t, "POST", path("/api/webhooks/%d/rotate-secret", w.ID), b.A.AdminToken, body), http.StatusUnprocessableEntity, "overlap_seconds")
	}
	wantProblem(t, b.do(t, "GET", path("/api/webhooks/%d/deliveries?state=lost", w.ID), b.A.AdminToken, nil), http.StatusUnprocessableEntity, "state")
}

// Admins write; admins and accounting read; viewers and vendor users do
// neither.
func TestWebhookRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.createWebhook(t, b.A, validWebhook())
	acct := b.createUser(t, b.A, store.RoleAccounting)
	reads := []string{"/api/webhooks", path("/api/webhooks/%d", w.ID), path("/api/webhooks/%d/deliveries", w.ID)}
	writes := []request{
		{Method: "POST", Path: "/api/webhooks", Body: validWebhook()},
		{Method: "PATCH", Path: path("/api/webhooks/%d", w.ID), Body: obj{"description": "x"}},
		{Method: "DELETE", Path: path("/api/webhooks/%d", w.ID)},
		{Method: "POST", Path: path("/api/webhooks/%d/rotate-secret", w.ID)},
		{Method: "POST", Path: path("/api/webhooks/%d/test", w.ID)},
		{Method: "POST", Path: path("/api/webhooks/%d/deliveries/1/retry", w.ID)},
	}
	for _, p := range reads {
		if res := b.do(t, "GET", p, acct, nil); res.Status != http.StatusOK {
			t.Errorf("accounting GET %s = %d %s", p, res.Status, res.Body)
		}
		for _, tok := range []string{b.A.ViewerToken, b.A.VendorToken} {
			wantProblem(t, b.do(t, "GET", p, tok, nil), http.StatusForbidden)
		}
		wantProblem(t, b.do(t, "GET", p, "", nil), http.StatusUnauthorized)
	}
	for _, r := range writes {
		for _, tok := range []string{acct, b.A.ViewerToken, b.A.VendorToken} {
			r.Token = tok
			wantProblem(t, b.send(t, r), http.StatusForbidden)
		}
	}
	if got := b.queryString(t, `SELECT description FROM webhook_endpoints WHERE id = ?`, w.ID); got != "ERP inbox" {
		t.Errorf("a forbidden write changed the endpoint: %q", got)
	}
}

// Another tenant's endpoint and deliveries answer 404 to every route.
func TestWebhookTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.createWebhook(t, b.A, validWebhook())
	ev, err := store.RequestWebhookTest(context.Background(), b.db, b.A.Tenant.ID, w.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := store.EnsureWebhookDeliveries(context.Background(), b.db, ev, []int64{w.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.FailWebhookDelivery(context.Background(), b.db, ds[0].ID, 0, "unreachable"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []request{
		{Method: "GET", Path: path("/api/webhooks/%d", w.ID)},
		{Method: "PATCH", Path: path("/api/webhooks/%d", w.ID), Body: obj{"description": "mine now"}},
		{Method: "DELETE", Path: path("/api/webhooks/%d", w.ID)},
		{Method: "POST", Path: path("/api/webhooks/%d/rotate-secret", w.ID)},
		{Method: "POST", Path: path("/api/webhooks/%d/test", w.ID)},
		{Method: "GET", Path: path("/api/webhooks/%d/deliveries", w.ID)},
		{Method: "GET", Path: path("/api/webhooks/%d/deliveries/%d", w.ID, ds[0].ID)},
		{Method: "POST", Path: path("/api/webhooks/%d/deliveries/%d/retry", w.ID, ds[0].ID)},
	} {
		r.Token = b.B.AdminToken
		wantProblem(t, b.send(t, r), http.StatusNotFound)
	}
	var list struct {
		Meta listMetaJSON `json:"meta"`
	}
	b.do(t, "GET", "/api/webhooks", b.B.AdminToken, nil).decode(t, &list)
	if list.Meta.Total != 0 {
		t.Errorf("tenant B lists %d endpoints", list.Meta.Total)
	}
	if got := b.queryString(t, `SELECT description FROM webhook_endpoints WHERE id = ?`, w.ID); got != "ERP inbox" {
		t.Errorf("tenant B changed the endpoint: %q", got)
	}
	// A delivery of another endpoint of the same tenant is not found under this one.
	w2 := b.createWebhook(t, b.A, validWebhook())
	wantProblem(t, b.do(t, "GET", path("/api/webhooks/%d/deliveries/%d", w2.ID, ds[0].ID), b.A.AdminToken, nil), http.StatusNotFound)
	wantProblem(t, b.do(t, "POST", path("/api/webhooks/%d/deliveries/%d/retry", w2.ID, ds[0].ID), b.A.AdminToken, nil), http.StatusNotFound)
}

func TestUpdateAndDeleteWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.createWebhook(t, b.A, validWebhook())
	res := b.do(t, "PATCH", path("/api/webhooks/%d", w.ID), b.A.AdminToken, obj{"url": "https://other.example.com/in",
		"event_types": []string{store.EventPaymentRecorded}, "enabled": false})
	if res.Status != http.StatusOK {
		t.Fatalf("patch = %d %s", res.Status, res.Body)
	}
	var got webhookJSON
	res.decode(t, &got)
	if got.URL != "https://other.example.com/in" || !slices.Equal(got.EventTypes, []string{store.EventPaymentRecorded}) || got.Enabled ||
		got.DisabledReason != "manual" || got.DisabledAt == nil || got.Description != "ERP inbox" {
		t.Errorf("patched = %+v", got)
	}
	wantProblem(t, b.do(t, "POST", path("/api/webhooks/%d/test", w.ID), b.A.AdminToken, nil), http.StatusConflict)
	got = webhookJSON{}
	b.do(t, "PATCH", path("/api/webhooks/%d", w.ID), b.A.AdminToken, obj{"enabled": true}).decode(t, &got)
	if !got.Enabled || got.DisabledReason != "" || got.DisabledAt != nil {
		t.Errorf("re-enabled = %+v", got)
	}
	if res := b.do(t, "DELETE", path("/api/webhooks/%d", w.ID), b.A.AdminToken, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", res.Status, res.Body)
	}
	wantProblem(t, b.do(t, "GET", path("/api/webhooks/%d", w.ID), b.A.AdminToken, nil), http.StatusNotFound)
	wantProblem(t, b.do(t, "DELETE", path("/api/webhooks/%d", w.ID), b.A.AdminToken, nil), http.StatusNotFound)
	if n := b.queryInt(t, `SELECT COUNT(*) FROM audit_log WHERE entity_type = 'webhook_endpoint' AND entity_id = ?`, w.ID); n != 4 {
		t.Errorf("%d audit entries (create, 2 updates, delete), want 4", n)
	}
}

// Rotation returns the new secret once; the previous one keeps signing
// for the overlap (default a day).
func TestRotateWebhookSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.createWebhook(t, b.A, validWebhook())
	res := b.do(t, "POST", path("/api/webhooks/%d/rotate-secret", w.ID), b.A.AdminToken, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("rotate = %d %s", res.Status, res.Body)
	}
	var rot struct {
		Secret                  string    `json:"secret"`
		PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
	}
	res.decode(t, &rot)
	if !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == w.Secret {
		t.Fatalf("rotated secret %q (old %q)", rot.Secret, w.Secret)
	}
	if d := time.Until(rot.PreviousSecretExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("previous secret expires in %s, want a day", d)
	}
	ep, err := store.GetWebhookEndpoint(context.Background(), b.db, b.A.Tenant.ID, w.ID)
	if err != nil || ep.Secret != rot.Secret || ep.PreviousSecret != w.Secret {
		t.Fatalf("stored secrets do not match the rotation (%v)", err)
	}
	if s, err := ep.SigningSecrets(time.Now()); err != nil || len(s) != 2 {
		t.Errorf("%d signing secrets during the overlap, want 2 (%v)", len(s), err)
	}
	var got webhookJSON
	b.do(t, "GET", path("/api/webhooks/%d", w.ID), b.A.AdminToken, nil).decode(t, &got)
	if got.SecretRotatedAt == nil || got.PreviousSecretExpiresAt == nil || got.Secret != "" {
		t.Errorf("endpoint after rotation = %+v", got)
	}
	res = b.do(t, "POST", path("/api/webhooks/%d/rotate-secret", w.ID), b.A.AdminToken, obj{"overlap_seconds": 60})
	res.decode(t, &rot)
	if d := time.Until(rot.PreviousSecretExpiresAt); d < 50*time.Second || d > 70*time.Second {
		t.Errorf("previous secret expires in %s, want 60 s", d)
	}
}

// A test event and a manual retry go through the outbox (published at
// once); deliveries are listed with their attempts.
func TestWebhookTestEventDeliveriesAndRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := b.createWebhook(t, b.A, validWebhook())
	res := b.do(t, "POST", path("/api/webhooks/%d/test", w.ID), b.A.AdminToken, nil)
	if res.Status != http.StatusAccepted {
		t.Fatalf("test = %d %s", res.Status, res.Body)
	}
	var tr struct {
		EndpointID int64  `json:"endpoint_id"`
		EventID    int64  `json:"event_id"`
		Type       string `json:"type"`
	}
	res.decode(t, &tr)
	if tr.EndpointID != w.ID || tr.Type != store.EventWebhookTest || tr.EventID <= 0 {
		t.Fatalf("test response = %+v", tr)
	}
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	published := func(eventID int64) bool {
		ti, err := insp.GetTaskInfo(tasks.QueueCritical, tasks.EventTaskID(eventID))
		return err == nil && ti.Type == (tasks.EventDispatch{}).Kind()
	}
	if !published(tr.EventID) {
		t.Error("the test event's dispatch task was not enqueued")
	}
	ev, err := store.GetEvent(ctx, b.db, tr.EventID)
	if err != nil || ev.Type != store.EventWebhookTest || ev.TenantID != b.A.Tenant.ID {
		t.Fatalf("outbox event = %+v, %v", ev, err)
	}

	// What event:dispatch and webhook:deliver would do (tested in worker/).
	ds, err := store.EnsureWebhookDeliveries(ctx, b.db, ev, []int64{w.ID})
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	if _, _, err := store.RecordWebhookAttempt(ctx, b.db, store.WebhookOutcome{DeliveryID: d.ID, EndpointID: w.ID, State: store.WebhookFailed,
		Attempt: store.WebhookAttempt{StartedAt: time.Now(), Duration: 120 * time.Millisecond, StatusCode: 502, ResponseExcerpt: "bad gateway", Error: "receiver answered 502"}}); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []webhookDeliveryJSON `json:"data"`
		Meta listMetaJSON          `json:"meta"`
	}
	res = b.do(t, "GET", path("/api/webhooks/%d/deliveries", w.ID), b.A.AdminToken, nil)
	res.decode(t, &list)
	if list.Meta.Total != 1 || len(list.Data) != 1 {
		t.Fatalf("deliveries = %s", res.Body)
	}
	got := list.Data[0]
	if got.ID != d.ID || got.State != store.WebhookFailed || got.WebhookID != d.MsgID || got.EventType != store.EventWebhookTest || got.Attempts != 1 ||
		len(got.AttemptLog) != 1 || got.AttemptLog[0].StatusCode != 502 || got.AttemptLog[0].ResponseExcerpt != "bad gateway" || got.AttemptLog[0].DurationMS != 120 {
		t.Errorf("delivery = %+v", got)
	}
	for state, want := range map[string]int{"failed": 1, "pending": 0, "succeeded": 0} {
		b.do(t, "GET", path("/api/webhooks/%d/deliveries?state=%s", w.ID, state), b.A.AdminToken, nil).decode(t, &list)
		if list.Meta.Total != want {
			t.Errorf("deliveries?state=%s total %d, want %d", state, list.Meta.Total, want)
		}
	}
	res = b.do(t, "GET", path("/api/webhooks/%d/deliveries/%d", w.ID, d.ID), b.A.AdminToken, nil)
	if res.Status != http.StatusOK || !json.Valid(res.Body) {
		t.Errorf("get delivery = %d %s", res.Status, res.Body)
	}

	res = b.do(t, "POST", path("/api/webhooks/%d/deliveries/%d/retry", w.ID, d.ID), b.A.AdminToken, nil)
	if res.Status != http.StatusAccepted {
		t.Fatalf("retry = %d %s", res.Status, res.Body)
	}
	res.decode(t, &got)
	if got.State != store.WebhookPending || got.Round != 1 || got.WebhookID != d.MsgID {
		t.Errorf("retried delivery = %+v", got)
	}
	retryEvent := b.queryInt(t, `SELECT id FROM outbox_events WHERE event_type = ? AND aggregate_id = ?`, store.EventWebhookRetry, d.ID)
	if !published(retryEvent) {
		t.Error("the retry event's dispatch task was not enqueued")
	}
	wantProblem(t, b.do(t, "POST", path("/api/webhooks/%d/deliveries/%d/retry", w.ID, d.ID), b.A.AdminToken, nil), http.StatusConflict)
	wantProblem(t, b.do(t, "POST", path("/api/webhooks/%d/deliveries/999999/retry", w.ID), b.A.AdminToken, nil), http.StatusNotFound)
}

// The OpenAPI document covers the webhook routes.
func TestOpenAPICoversWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "GET", "/openapi.json", "", nil)
	for _, p := range []string{`"/api/webhooks"`, `"/api/webhooks/{id}"`, `"/api/webhooks/{id}/rotate-secret"`, `"/api/webhooks/{id}/test"`,
		`"/api/webhooks/{id}/deliveries"`, `"/api/webhooks/{id}/deliveries/{delivery_id}/retry"`} {
		if !bytes.Contains(res.Body, []byte(p)) {
			t.Errorf("OpenAPI document lacks %s", p)
		}
	}
}
