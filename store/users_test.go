package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// Disabling a user or changing its role, vendor or password bumps its token
// generation and stamps the revocation; other changes do not; the
// revocations since a time are listed.
func TestUpdateUserRevokesTokens(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "tokens")
	v := storetest.Vendor(t, db, ten.ID, "Acme")
	u, err := store.CreateUser(ctx, db, store.User{TenantID: ten.ID, Email: "u@tokens.test", PasswordHash: "x", Role: store.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	viewer, vendor, off, on, hash := store.RoleViewer, store.RoleVendor, true, false, "y"
	steps := []struct {
		name  string
		patch store.UserPatch
		gen   int64
	}{
		{"nothing", store.UserPatch{Role: &viewer, Disabled: &on}, 0},
		{"role", store.UserPatch{Role: &vendor, VendorID: &v.ID}, 1},
		{"same role and vendor", store.UserPatch{Role: &vendor, VendorID: &v.ID}, 1},
		{"password", store.UserPatch{PasswordHash: &hash}, 2},
		{"disable", store.UserPatch{Disabled: &off}, 3},
		{"disable again", store.UserPatch{Disabled: &off}, 3},
		{"enable", store.UserPatch{Disabled: &on}, 3},
	}
	for _, s := range steps {
		got, err := store.UpdateUser(ctx, db, ten.ID, u.ID, s.patch, 0, "")
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		stored, err := store.GetUser(ctx, db, ten.ID, u.ID)
		if err != nil || got.TokenGen != s.gen || stored.TokenGen != s.gen {
			t.Fatalf("%s: token generation %d (stored %d, %v), want %d", s.name, got.TokenGen, stored.TokenGen, err, s.gen)
		}
	}
	revs, err := store.TokenRevocations(ctx, db, start)
	if err != nil || len(revs) != 1 || revs[0].UserID != u.ID || revs[0].Gen != 3 || revs[0].At.Before(start) {
		t.Fatalf("revocations since the start = %+v, %v", revs, err)
	}
	if all, err := store.TokenRevocations(ctx, db, time.Time{}); err != nil || len(all) != 1 {
		t.Errorf("all revocations = %+v, %v", all, err)
	}
	if later, err := store.TokenRevocations(ctx, db, revs[0].At.Add(time.Millisecond)); err != nil || len(later) != 0 {
		t.Errorf("revocations after the last one = %+v, %v", later, err)
	}
}
