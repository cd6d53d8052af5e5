package store_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func createEndpoint(t *testing.T, db *store.DB, tenantID int64, types ...string) store.WebhookEndpoint {
	t.Helper()
	e, err := store.CreateWebhookEndpoint(context.Background(), db, store.WebhookEndpoint{TenantID: tenantID, URL: "https://hooks.example.com/in",
		Description: "test", EventTypes: types, Enabled: true}, 0, "req-1")
	if err != nil {
		t.Fatalf("create endpoint: %v", err)
	}
	return e
}

func countWhere(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	other := storetest.Tenant(t, db, "other")

	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated, store.EventPurchaseOrderCreated, store.EventVendorCreated)
	raw, ok := strings.CutPrefix(e.Secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(raw)
	if !ok || err != nil || len(key) < 24 {
		t.Fatalf("secret %q: want whsec_ and base64 of 24+ bytes (%v)", e.Secret, err)
	}
	got, err := store.GetWebhookEndpoint(ctx, db, ten.ID, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{store.EventPurchaseOrderCreated, store.EventVendorCreated}; !slices.Equal(got.EventTypes, want) || !got.Enabled {
		t.Errorf("endpoint = %+v, want types %v, enabled", got, want)
	}
	if _, err := store.GetWebhookEndpoint(ctx, db, other.ID, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other tenant's get: err = %v, want ErrNotFound", err)
	}
	if n := countWhere(t, db, `SELECT COUNT(*) FROM audit_log WHERE action = 'webhook_endpoint.create' AND after_state LIKE ?`, "%whsec_%"); n != 0 {
		t.Error("the audit entry holds the secret")
	}

	list, total, err := store.ListWebhookEndpoints(ctx, db, ten.ID, store.WebhookEndpointFilter{})
	if err != nil || total != 1 || len(list) != 1 || len(list[0].EventTypes) != 2 {
		t.Fatalf("list = %+v, %d, %v", list, total, err)
	}
	if _, total, _ := store.ListWebhookEndpoints(ctx, db, other.ID, store.WebhookEndpointFilter{}); total != 0 {
		t.Errorf("other tenant lists %d endpoints", total)
	}

	off := false
	var upd store.WebhookEndpoint
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		upd, err = store.UpdateWebhookEndpoint(ctx, tx, ten.ID, e.ID, store.WebhookEndpointPatch{EventTypes: []string{store.EventInvoiceCreated}, Enabled: &off}, 0, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Enabled || upd.DisabledReason != store.WebhookDisabledManual || !slices.Equal(upd.EventTypes, []string{store.EventInvoiceCreated}) {
		t.Errorf("updated = %+v", upd)
	}
	on := true
	upd, err = store.UpdateWebhookEndpoint(ctx, db, ten.ID, e.ID, store.WebhookEndpointPatch{Enabled: &on}, 0, "")
	if err != nil || !upd.Enabled || upd.DisabledReason != "" || upd.DisabledAt != nil {
		t.Errorf("re-enabled = %+v, %v", upd, err)
	}

	// Rotation: both secrets sign during the overlap, only the new one after.
	rot, err := store.RotateWebhookSecret(ctx, db, ten.ID, e.ID, time.Hour, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secret == e.Secret || rot.PreviousSecret != e.Secret {
		t.Fatalf("rotated secrets: new %q previous %q (old %q)", rot.Secret, rot.PreviousSecret, e.Secret)
	}
	got, _ = store.GetWebhookEndpoint(ctx, db, ten.ID, e.ID)
	if s, err := got.SigningSecrets(time.Now()); err != nil || !slices.Equal(s, []string{rot.Secret, e.Secret}) {
		t.Errorf("signing secrets during overlap = %d secrets (%v)", len(s), err)
	}
	if s, err := got.SigningSecrets(time.Now().Add(2 * time.Hour)); err != nil || !slices.Equal(s, []string{rot.Secret}) {
		t.Errorf("signing secrets after overlap = %d secrets (%v)", len(s), err)
	}

	// Deleting takes the subscriptions, deliveries and attempts along.
	ev := insertEvent(t, db, ten.ID, store.EventInvoiceCreated)
	ds, err := store.EnsureWebhookDeliveries(ctx, db, ev, []int64{e.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.RecordWebhookAttempt(ctx, db, store.WebhookOutcome{DeliveryID: ds[0].ID, EndpointID: e.ID, State: store.WebhookSucceeded,
		Attempt: store.WebhookAttempt{StartedAt: time.Now(), StatusCode: 200}}); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteWebhookEndpoint(ctx, db, ten.ID, e.ID, 0, ""); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"webhook_endpoints", "webhook_subscriptions", "webhook_deliveries", "webhook_attempts"} {
		if n := countWhere(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Errorf("%s holds %d rows after the delete", table, n)
		}
	}
	if err := store.DeleteWebhookEndpoint(ctx, db, ten.ID, e.ID, 0, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
}

func insertEvent(t *testing.T, db *store.DB, tenantID int64, typ string) store.Event {
	t.Helper()
	ev := store.Event{TenantID: tenantID, Type: typ, AggregateType: "test", AggregateID: 1, Payload: []byte(`{"id":1}`)}
	if err := store.InsertEvent(context.Background(), db, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// GetEventForDispatch reads the event with the enabled endpoints of its
// tenant subscribed to its type (and nothing else), its tenant, and the
// address of the vendor its payload names among the tenant's vendors.
func TestGetEventForDispatch(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten, err := store.CreateTenant(ctx, db, "dispatch-"+t.Name(), store.TenantSettings{AccountingEmails: []string{"ap@acme.test"}})
	if err != nil {
		t.Fatal(err)
	}
	other := storetest.Tenant(t, db, "other")
	a := createEndpoint(t, db, ten.ID, store.EventPurchaseOrderCreated)
	b := createEndpoint(t, db, ten.ID, store.EventPurchaseOrderCreated, store.EventVendorCreated)
	onlyVendor := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	createEndpoint(t, db, other.ID, store.EventPurchaseOrderCreated)
	disabled := createEndpoint(t, db, ten.ID, store.EventPurchaseOrderCreated)
	if ok, err := store.DisableWebhookEndpoint(ctx, db, ten.ID, disabled.ID, store.WebhookDisabledGone, time.Now()); !ok || err != nil {
		t.Fatalf("disable: %v %v", ok, err)
	}
	if ok, err := store.DisableWebhookEndpoint(ctx, db, ten.ID, disabled.ID, store.WebhookDisabledGone, time.Now()); ok || err != nil {
		t.Fatalf("second disable: %v %v, want false", ok, err)
	}
	v := storetest.Vendor(t, db, ten.ID, "Paper Co")
	foreign := storetest.Vendor(t, db, other.ID, "Ink Co")
	event := func(tenantID int64, typ, payload string) store.Event {
		t.Helper()
		ev := store.Event{TenantID: tenantID, Type: typ, AggregateType: "purchase_order", AggregateID: 7, Payload: []byte(payload)}
		if err := store.InsertEvent(ctx, db, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}

	ev := event(ten.ID, store.EventPurchaseOrderCreated, fmt.Sprintf(`{"id":7,"vendor_id":%d,"version":1}`, v.ID))
	d, err := store.GetEventForDispatch(ctx, db, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Event.ID != ev.ID || d.Event.Type != ev.Type || d.Event.AggregateID != 7 || string(d.Event.Payload) != string(ev.Payload) ||
		d.Event.CreatedAt.IsZero() || d.Event.DispatchedAt != nil {
		t.Errorf("event %+v, want %+v", d.Event, ev)
	}
	if !slices.Equal(d.EndpointIDs, []int64{a.ID, b.ID}) {
		t.Errorf("subscribed endpoints = %v, want %v", d.EndpointIDs, []int64{a.ID, b.ID})
	}
	if d.Tenant == nil || d.Tenant.ID != ten.ID || d.Tenant.Name != ten.Name || !slices.Equal(d.Tenant.Settings.AccountingEmails, []string{"ap@acme.test"}) {
		t.Errorf("tenant %+v", d.Tenant)
	}
	if d.VendorEmail != "paper.co@vendor.test" {
		t.Errorf("vendor email %q", d.VendorEmail)
	}

	for _, payload := range []string{`{"id":7}`, fmt.Sprintf(`{"vendor_id":%d}`, foreign.ID), `{"vendor_id":0}`, `{"vendor_id":"x"}`} {
		d, err := store.GetEventForDispatch(ctx, db, event(ten.ID, store.EventVendorCreated, payload).ID)
		if err != nil || d.VendorEmail != "" || !slices.Equal(d.EndpointIDs, []int64{b.ID, onlyVendor.ID}) || d.Tenant == nil {
			t.Errorf("payload %s: %+v, %v; want no vendor address, endpoints %v", payload, d, err, []int64{b.ID, onlyVendor.ID})
		}
	}
	if d, err := store.GetEventForDispatch(ctx, db, event(ten.ID, store.EventInvoiceCreated, `{}`).ID); err != nil || len(d.EndpointIDs) != 0 {
		t.Errorf("a type nobody subscribes to: endpoints %v, %v", d.EndpointIDs, err)
	}
	gone := event(ten.ID+other.ID+1000, store.EventPurchaseOrderCreated, `{}`)
	if d, err := store.GetEventForDispatch(ctx, db, gone.ID); err != nil || d.Tenant != nil || d.Event.ID != gone.ID || len(d.EndpointIDs) != 0 {
		t.Errorf("event of a tenant that is gone: %+v, %v", d, err)
	}
	if _, err := store.GetEventForDispatch(ctx, db, gone.ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing event: %v", err)
	}
}

// One delivery per event × endpoint, however often it is asked for, with a
// webhook-id stable per (event, endpoint).
func TestEnsureWebhookDeliveriesIsIdempotent(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	a := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	b := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	ev := insertEvent(t, db, ten.ID, store.EventVendorCreated)
	first, err := store.EnsureWebhookDeliveries(ctx, db, ev, []int64{a.ID, b.ID})
	if err != nil || len(first) != 2 {
		t.Fatalf("ensure: %v %v", first, err)
	}
	again, err := store.EnsureWebhookDeliveries(ctx, db, ev, []int64{b.ID, a.ID})
	if err != nil || len(again) != 2 || again[0].ID != first[0].ID || again[1].ID != first[1].ID {
		t.Fatalf("second ensure = %+v (%v), want the same rows %+v", again, err, first)
	}
	if n := countWhere(t, db, "SELECT COUNT(*) FROM webhook_deliveries"); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
	if first[0].MsgID != store.WebhookMsgID(ev.ID, a.ID) || first[0].MsgID == first[1].MsgID || first[0].State != store.WebhookPending {
		t.Errorf("deliveries = %+v", first)
	}
}

// With one endpoint the new delivery is returned without reading it back:
// what it returns is the stored row, the first time and every time after.
func TestEnsureWebhookDeliveriesOneEndpoint(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	ev := insertEvent(t, db, ten.ID, store.EventVendorCreated)
	for i := range 2 {
		ds, err := store.EnsureWebhookDeliveries(ctx, db, ev, []int64{e.ID})
		if err != nil || len(ds) != 1 {
			t.Fatalf("ensure %d: %+v %v", i, ds, err)
		}
		stored, err := store.GetWebhookDelivery(ctx, db, ten.ID, ds[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		got := ds[0]
		if got.NextAttemptAt == nil || stored.NextAttemptAt == nil || !got.NextAttemptAt.Equal(*stored.NextAttemptAt) {
			t.Fatalf("ensure %d: next attempt %v, stored %v", i, got.NextAttemptAt, stored.NextAttemptAt)
		}
		got.NextAttemptAt = stored.NextAttemptAt
		if !got.CreatedAt.Equal(stored.CreatedAt) || !got.UpdatedAt.Equal(stored.UpdatedAt) {
			t.Fatalf("ensure %d: times %v/%v, stored %v/%v", i, got.CreatedAt, got.UpdatedAt, stored.CreatedAt, stored.UpdatedAt)
		}
		got.CreatedAt, got.UpdatedAt = stored.CreatedAt, stored.UpdatedAt
		if !reflect.DeepEqual(got, stored) {
			t.Fatalf("ensure %d returned %+v; stored %+v", i, got, stored)
		}
	}
	if n := countWhere(t, db, "SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?", ev.ID); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

// A delivery is leased to one worker at a time; a finished one to none.
func TestClaimWebhookDelivery(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	ds, err := store.EnsureWebhookDeliveries(ctx, db, insertEvent(t, db, ten.ID, store.EventVendorCreated), []int64{e.ID})
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	claim := func(round int, until time.Time) bool {
		t.Helper()
		ok, err := store.ClaimWebhookDelivery(ctx, db, d.ID, round, until)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if claim(1, time.Now().Add(time.Minute)) {
		t.Error("claimed a round the delivery is not at")
	}
	if !claim(0, time.Now().Add(time.Minute)) {
		t.Fatal("first claim failed")
	}
	if claim(0, time.Now().Add(time.Minute)) {
		t.Error("second claim succeeded during the lease")
	}
	if err := store.ReleaseWebhookDelivery(ctx, db, d.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !claim(0, time.Now().Add(-time.Second)) { // a lease that has already run out
		t.Fatal("claim after release failed")
	}
	if !claim(0, time.Now().Add(time.Minute)) {
		t.Error("claim after the lease ran out failed")
	}
	if _, _, err := store.RecordWebhookAttempt(ctx, db, store.WebhookOutcome{DeliveryID: d.ID, EndpointID: e.ID, State: store.WebhookSucceeded,
		Attempt: store.WebhookAttempt{StartedAt: time.Now(), StatusCode: 204}}); err != nil {
		t.Fatal(err)
	}
	if claim(0, time.Now().Add(time.Minute)) {
		t.Error("claimed a succeeded delivery")
	}
}

// Attempts are logged and keep the endpoint's failure run: a failure starts
// it, later failures keep its start, a success ends it.
func TestRecordWebhookAttemptTracksFailureRun(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	ds, err := store.EnsureWebhookDeliveries(ctx, db, insertEvent(t, db, ten.ID, store.EventVendorCreated), []int64{e.ID})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	next := time.Now().Add(time.Minute)
	fail := store.WebhookOutcome{DeliveryID: ds[0].ID, EndpointID: e.ID, State: store.WebhookPending,
		Attempt: store.WebhookAttempt{StartedAt: start, Duration: 1500 * time.Millisecond, StatusCode: 500, ResponseExcerpt: "oops", Error: "receiver answered 500", NextAttemptAt: &next}}
	since1, n1, err := store.RecordWebhookAttempt(ctx, db, fail)
	if err != nil || since1 == nil || n1 != 1 || since1.Sub(start).Abs() > time.Millisecond {
		t.Fatalf("first failure: since %v attempt %d err %v; want since %v", since1, n1, err, start)
	}
	fail.Attempt.StartedAt = time.Now()
	since2, n2, err := store.RecordWebhookAttempt(ctx, db, fail)
	if err != nil || since2 == nil || !since2.Equal(*since1) || n2 != 2 {
		t.Fatalf("second failure: since %v attempt %d err %v; want the run's start kept", since2, n2, err)
	}
	ok := store.WebhookOutcome{DeliveryID: ds[0].ID, EndpointID: e.ID, State: store.WebhookSucceeded, Attempt: store.WebhookAttempt{StartedAt: time.Now(), StatusCode: 200}}
	since3, n3, err := store.RecordWebhookAttempt(ctx, db, ok)
	if err != nil || since3 != nil || n3 != 3 {
		t.Fatalf("success: since %v attempt %d err %v; want the run ended", since3, n3, err)
	}
	if row, err := store.GetWebhookEndpointRow(ctx, db, ten.ID, e.ID); err != nil || row.FailingSince != nil {
		t.Fatalf("endpoint after the success: failing since %v (%v), want no run", row.FailingSince, err)
	}
	d, err := store.GetWebhookDelivery(ctx, db, ten.ID, ds[0].ID)
	if err != nil || d.State != store.WebhookSucceeded || d.Attempts != 3 || d.RoundAttempts != 3 || d.DeliveredAt == nil || d.LastStatus != 200 {
		t.Errorf("delivery = %+v, %v", d, err)
	}
	log, err := store.ListWebhookAttempts(ctx, db, []int64{d.ID})
	if err != nil || len(log[d.ID]) != 3 {
		t.Fatalf("attempts = %+v, %v", log, err)
	}
	a := log[d.ID][0]
	if a.Attempt != 1 || a.StatusCode != 500 || a.ResponseExcerpt != "oops" || a.Error != "receiver answered 500" || a.Duration != 1500*time.Millisecond || a.NextAttemptAt == nil {
		t.Errorf("first attempt = %+v", a)
	}
}

// A manual retry starts a new round of a finished delivery and emits the
// event that enqueues it; a pending delivery or a disabled endpoint refuses.
func TestRetryWebhookDelivery(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	other := storetest.Tenant(t, db, "other")
	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	ds, err := store.EnsureWebhookDeliveries(ctx, db, insertEvent(t, db, ten.ID, store.EventVendorCreated), []int64{e.ID})
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	if _, _, err := store.RetryWebhookDelivery(ctx, db, ten.ID, e.ID, d.ID, 0, ""); !errors.Is(err, store.ErrConflict) {
		t.Errorf("retry of a pending delivery: err = %v, want ErrConflict", err)
	}
	if _, _, err := store.RetryWebhookDelivery(ctx, db, other.ID, e.ID, d.ID, 0, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("retry from another tenant: err = %v, want ErrNotFound", err)
	}
	if err := store.FailWebhookDelivery(ctx, db, d.ID, 0, "gave up"); err != nil {
		t.Fatal(err)
	}
	got, ev, err := store.RetryWebhookDelivery(ctx, db, ten.ID, e.ID, d.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.WebhookPending || got.Round != 1 || got.RoundAttempts != 0 {
		t.Errorf("retried delivery = %+v", got)
	}
	req, err := store.DecodeWebhookRetryRequest(ev)
	if err != nil || ev.Type != store.EventWebhookRetry || req != (store.WebhookRetryRequest{DeliveryID: d.ID, EndpointID: e.ID, Round: 1}) {
		t.Errorf("retry event = %+v %+v %v", ev, req, err)
	}
	if err := store.FailWebhookDelivery(ctx, db, d.ID, 0, "stale round"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := store.GetWebhookDelivery(ctx, db, ten.ID, d.ID); cur.State != store.WebhookPending {
		t.Errorf("a stale round's failure changed the delivery: %+v", cur)
	}
	if _, err := store.DisableWebhookEndpoint(ctx, db, ten.ID, e.ID, store.WebhookDisabledFailing, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := store.FailWebhookDelivery(ctx, db, d.ID, 1, "disabled"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.RetryWebhookDelivery(ctx, db, ten.ID, e.ID, d.ID, 0, ""); !errors.Is(err, store.ErrConflict) {
		t.Errorf("retry on a disabled endpoint: err = %v, want ErrConflict", err)
	}
	if _, err := store.RequestWebhookTest(ctx, db, ten.ID, e.ID, 0, ""); !errors.Is(err, store.ErrConflict) {
		t.Errorf("test of a disabled endpoint: err = %v, want ErrConflict", err)
	}
}

// GetWebhookDeliveryWork reads a delivery with its endpoint and its event;
// a removed event leaves Event zero, a removed endpoint or another tenant's
// delivery is ErrNotFound.
func TestGetWebhookDeliveryWork(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "hooks")
	other := storetest.Tenant(t, db, "other")
	e := createEndpoint(t, db, ten.ID, store.EventVendorCreated)
	ev := insertEvent(t, db, ten.ID, store.EventVendorCreated)
	ds, err := store.EnsureWebhookDeliveries(ctx, db, ev, []int64{e.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	w, err := store.GetWebhookDeliveryWork(ctx, db, ten.ID, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.GetWebhookDelivery(ctx, db, ten.ID, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Delivery.ID != want.ID || w.Delivery.MsgID != want.MsgID || w.Delivery.State != store.WebhookPending || w.Delivery.EventID != ev.ID ||
		!w.Delivery.CreatedAt.Equal(want.CreatedAt) || (w.Delivery.NextAttemptAt == nil) != (want.NextAttemptAt == nil) {
		t.Errorf("delivery %+v, want %+v", w.Delivery, want)
	}
	if w.Endpoint.ID != e.ID || w.Endpoint.URL != e.URL || w.Endpoint.Secret != e.Secret || !w.Endpoint.Enabled || w.Endpoint.FailingSince != nil {
		t.Errorf("endpoint %+v, want %+v", w.Endpoint, e)
	}
	if w.Event.ID != ev.ID || w.Event.Type != ev.Type || w.Event.AggregateID != 1 || string(w.Event.Payload) != `{"id":1}` || w.Event.CreatedAt.IsZero() {
		t.Errorf("event %+v, want %+v", w.Event, ev)
	}
	if _, err := store.GetWebhookDeliveryWork(ctx, db, other.ID, ds[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's delivery: %v, want ErrNotFound", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM outbox_events WHERE id = ?`, ev.ID); err != nil {
		t.Fatal(err)
	}
	if w, err := store.GetWebhookDeliveryWork(ctx, db, ten.ID, ds[0].ID); err != nil || w.Event.ID != 0 || w.Delivery.ID != ds[0].ID {
		t.Errorf("event removed: %+v, %v; want the delivery with no event", w, err)
	}
	if err := store.DeleteWebhookEndpoint(ctx, db, ten.ID, e.ID, 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetWebhookDeliveryWork(ctx, db, ten.ID, ds[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("endpoint removed: %v, want ErrNotFound", err)
	}
}
