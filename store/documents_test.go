package store_test

import (
	"context"
	"testing"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// PutDocument returns the stored row: the new one as written, and for a
// second put of the same subject and version the first one, unchanged.
func TestPutDocumentReturnsTheStoredRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "docs")
	in := store.Document{TenantID: ten.ID, Kind: store.DocPurchaseOrder, SubjectID: 42, Version: 2, BlobKey: "t/po/42/v2.pdf",
		ContentType: "application/pdf", Size: 1234, SHA256: "ab12"}

	first, err := store.PutDocument(ctx, db, in)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.GetDocument(ctx, db, ten.ID, store.DocPurchaseOrder, 42, 2)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == 0 || first != stored {
		t.Fatalf("put returned %+v; stored %+v", first, stored)
	}
	again := in
	again.BlobKey, again.Size = "t/po/42/v2-other.pdf", 99
	second, err := store.PutDocument(ctx, db, again)
	if err != nil {
		t.Fatal(err)
	}
	if second != stored {
		t.Fatalf("second put returned %+v; want the first row %+v", second, stored)
	}
}

// DocumentsExist answers each key on its own: other versions, kinds and
// tenants do not count, and every batch length (padded or not) lines up.
func TestDocumentsExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	a, b := storetest.Tenant(t, db, "docs-a"), storetest.Tenant(t, db, "docs-b")
	for _, s := range []int64{1, 3, 5} {
		if _, err := store.PutDocument(ctx, db, store.Document{TenantID: a.ID, Kind: store.DocPurchaseOrder, SubjectID: s, Version: 1,
			BlobKey: "k", ContentType: "application/pdf", SHA256: "00"}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []store.DocKey
	var want []bool
	for s := int64(1); s <= 6; s++ {
		keys = append(keys, store.DocKey{TenantID: a.ID, Kind: store.DocPurchaseOrder, SubjectID: s, Version: 1})
		want = append(want, s%2 == 1)
	}
	keys = append(keys,
		store.DocKey{TenantID: b.ID, Kind: store.DocPurchaseOrder, SubjectID: 1, Version: 1}, // another tenant
		store.DocKey{TenantID: a.ID, Kind: store.DocInvoice, SubjectID: 1, Version: 1},       // another kind
		store.DocKey{TenantID: a.ID, Kind: store.DocPurchaseOrder, SubjectID: 1, Version: 2}, // another version
	)
	want = append(want, false, false, false)
	for n := 1; n <= len(keys); n++ {
		got, err := store.DocumentsExist(ctx, db, keys[:n])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d keys: %d answers", n, len(got))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%d keys: key %+v = %t, want %t", n, keys[i], got[i], want[i])
			}
		}
	}
	if _, err := store.DocumentsExist(ctx, db, make([]store.DocKey, store.MaxDocKeys+1)); err == nil {
		t.Error("more than MaxDocKeys keys accepted")
	}
}
