package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func mustSync(t *testing.T, db *store.DB, tenantID int64, docType string, docID int64) store.AccountingSync {
	t.Helper()
	s, err := store.GetAccountingSync(context.Background(), db, tenantID, docType, docID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The sync row of a document is created once, however many callers race
// for it, and starts pending with nothing attempted.
func TestEnsureAccountingSyncCreatesOneRow(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acct")
	if _, err := store.GetAccountingSync(ctx, db, ten.ID, store.AccountingPurchaseOrder, 42); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get before ensure: %v, want ErrNotFound", err)
	}
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			s, err := store.EnsureAccountingSync(ctx, db, ten.ID, store.AccountingPurchaseOrder, 42)
			ids[i], errs[i] = s.ID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("ensure %d: id %d err %v; first id %d", i, ids[i], errs[i], ids[0])
		}
	}
	s := mustSync(t, db, ten.ID, store.AccountingPurchaseOrder, 42)
	if s.State != store.AccountingPending || s.AttemptedVersion != 0 || s.SyncedVersion != 0 || s.ExternalID != "" || s.Attempts != 0 {
		t.Errorf("new row = %+v", s)
	}
	// Another tenant's document with the same id is another row.
	other := storetest.Tenant(t, db, "acct-other")
	o, err := store.EnsureAccountingSync(ctx, db, other.ID, store.AccountingPurchaseOrder, 42)
	if err != nil || o.ID == s.ID {
		t.Fatalf("other tenant's row: %+v %v", o, err)
	}
}

// The outcomes of attempts move the row between states; an older
// version's outcome never overrides a newer one's.
func TestAccountingSyncStates(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acct")
	row, err := store.EnsureAccountingSync(ctx, db, ten.ID, store.AccountingPurchaseOrder, 7)
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string, fn func(context.Context, store.Querier, int64, store.AccountingAttempt) error, a store.AccountingAttempt,
		state string, attempted, synced int, externalID string) store.AccountingSync {
		t.Helper()
		if err := fn(ctx, db, row.ID, a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := mustSync(t, db, ten.ID, store.AccountingPurchaseOrder, 7)
		if s.State != state || s.AttemptedVersion != attempted || s.SyncedVersion != synced || s.ExternalID != externalID {
			t.Fatalf("%s: row = %+v, want state %s attempted %d synced %d external %q", name, s, state, attempted, synced, externalID)
		}
		return s
	}
	s := step("v1 fails", store.MarkAccountingFailed, store.AccountingAttempt{Version: 1, IdempotencyKey: "k1", EventID: 11, Status: 500, Error: "boom"},
		store.AccountingPending, 1, 0, "")
	if s.Attempts != 1 || s.LastStatus != 500 || s.LastError != "boom" || s.IdempotencyKey != "k1" || s.EventID != 11 {
		t.Errorf("after failure: %+v", s)
	}
	s = step("v1 synced", store.MarkAccountingSynced, store.AccountingAttempt{Version: 1, IdempotencyKey: "k1", Status: 201, ExternalID: "po_1"},
		store.AccountingSynced, 1, 1, "po_1")
	if s.Attempts != 2 || s.LastError != "" || s.SyncedAt == nil || s.EventID != 11 {
		t.Errorf("after success: %+v", s)
	}
	step("v2 rejected", store.MarkAccountingNeedsAttention, store.AccountingAttempt{Version: 2, IdempotencyKey: "k2", Status: 422, Error: "total: bad"},
		store.AccountingNeedsAttention, 2, 1, "po_1")
	// A late failure of v1 changes neither the state nor the versions.
	step("late v1 failure", store.MarkAccountingFailed, store.AccountingAttempt{Version: 1, Status: 503, Error: "late"},
		store.AccountingNeedsAttention, 2, 1, "po_1")
	// A late success of v1 does not hide that v2 needs attention.
	step("late v1 success", store.MarkAccountingSynced, store.AccountingAttempt{Version: 1, Status: 200, ExternalID: "po_1"},
		store.AccountingNeedsAttention, 2, 1, "po_1")
	// v3 goes through: synced; the first external id is kept.
	step("v3 synced", store.MarkAccountingSynced, store.AccountingAttempt{Version: 3, Status: 200, ExternalID: "po_other"},
		store.AccountingSynced, 3, 3, "po_1")
	// A failure of an already synced version leaves it synced.
	step("v3 failure after success", store.MarkAccountingFailed, store.AccountingAttempt{Version: 3, Status: 500, Error: "replayed"},
		store.AccountingSynced, 3, 3, "po_1")
	// A new version failing makes the row pending again.
	step("v4 fails", store.MarkAccountingFailed, store.AccountingAttempt{Version: 4, Status: 0, Error: "timeout"},
		store.AccountingPending, 4, 3, "po_1")

	// Long errors are clipped to the column.
	if err := store.MarkAccountingFailed(ctx, db, row.ID, store.AccountingAttempt{Version: 4, Error: strings.Repeat("é", 900)}); err != nil {
		t.Fatalf("long error: %v", err)
	}
	if s := mustSync(t, db, ten.ID, store.AccountingPurchaseOrder, 7); len(s.LastError) > 1000 || !strings.HasPrefix(s.LastError, "éé") {
		t.Errorf("clipped error is %d bytes", len(s.LastError))
	}
}

// An external id learned from the partner is stored once.
func TestSetAccountingExternalID(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acct")
	row, err := store.EnsureAccountingSync(ctx, db, ten.ID, store.AccountingInvoice, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bill_9", "bill_10"} {
		if err := store.SetAccountingExternalID(ctx, db, row.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if s := mustSync(t, db, ten.ID, store.AccountingInvoice, 3); s.ExternalID != "bill_9" || s.State != store.AccountingPending {
		t.Errorf("row = %+v, want external id bill_9, pending", s)
	}
}

// The backlog counts pending and needs_attention rows of every tenant;
// listing filters a tenant's rows by state.
func TestAccountingBacklogAndList(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	a := storetest.Tenant(t, db, "acct-a")
	b := storetest.Tenant(t, db, "acct-b")
	empty, err := store.GetAccountingBacklog(ctx, db)
	if err != nil || empty.Pending != 0 || empty.NeedsAttention != 0 || empty.OldestPending != nil {
		t.Fatalf("empty backlog = %+v, %v", empty, err)
	}
	mk := func(tenantID int64, docID int64, mark func(context.Context, store.Querier, int64, store.AccountingAttempt) error) {
		t.Helper()
		row, err := store.EnsureAccountingSync(ctx, db, tenantID, store.AccountingPayment, docID)
		if err != nil {
			t.Fatal(err)
		}
		if mark != nil {
			if err := mark(ctx, db, row.ID, store.AccountingAttempt{Version: 1, Status: 422, Error: "bad", ExternalID: "pay_x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(a.ID, 1, nil)
	mk(a.ID, 2, store.MarkAccountingNeedsAttention)
	mk(a.ID, 3, store.MarkAccountingSynced)
	mk(b.ID, 1, store.MarkAccountingNeedsAttention)
	mk(b.ID, 2, store.MarkAccountingFailed)
	bl, err := store.GetAccountingBacklog(ctx, db)
	if err != nil || bl.Pending != 2 || bl.NeedsAttention != 2 || bl.OldestPending == nil {
		t.Fatalf("backlog = %+v, %v; want 2 pending, 2 needing attention", bl, err)
	}
	rows, total, err := store.ListAccountingSyncs(ctx, db, a.ID, store.AccountingFilter{State: store.AccountingNeedsAttention})
	if err != nil || total != 1 || len(rows) != 1 || rows[0].DocID != 2 || rows[0].LastError != "bad" {
		t.Fatalf("tenant a needing attention = %+v (total %d), %v", rows, total, err)
	}
	all, total, err := store.ListAccountingSyncs(ctx, db, a.ID, store.AccountingFilter{DocType: store.AccountingPayment})
	if err != nil || total != 3 || len(all) != 3 || all[0].DocID != 3 {
		t.Fatalf("tenant a rows = %+v (total %d), %v", all, total, err)
	}
}
