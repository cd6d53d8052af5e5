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
