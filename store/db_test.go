package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func TestParseDSNForcesParameters(t *testing.T) {
	norm, name, err := store.ParseDSN("app:secret@tcp(db:3306)/iacc_prod")
	if err != nil {
		t.Fatal(err)
	}
	if name != "iacc_prod" {
		t.Errorf("name = %q", name)
	}
	for _, want := range []string{"parseTime=true", "interpolateParams=true", "time_zone=%27%2B00%3A00%27"} {
		if !strings.Contains(norm, want) {
			t.Errorf("normalized DSN %q lacks %s", norm, want)
		}
	}
	if _, _, err := store.ParseDSN("root@tcp(127.0.0.1:3306)/"); err == nil {
		t.Error("a DSN without database was accepted")
	}
	if _, _, err := store.ParseDSN("not a dsn"); err == nil {
		t.Error("garbage DSN accepted")
	}
}

func TestMigrationsApplyAndReport(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	n, err := db.Migrate(ctx, nil)
	if err != nil || n != 0 {
		t.Fatalf("second migrate applied %d, err %v; want 0, nil", n, err)
	}
	st, err := db.MigrationStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) == 0 {
		t.Fatal("no migrations listed")
	}
	for _, s := range st {
		if !s.Applied {
			t.Errorf("migration %d %s not applied", s.Version, s.Name)
		}
	}
}

func TestDuplicateKeyIsConflict(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "dup")
	if _, err := store.CreateTenant(ctx, db, ten.Name, store.TenantSettings{}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate tenant: %v, want ErrConflict", err)
	}
	storetest.Vendor(t, db, ten.ID, "Same")
	if _, err := store.CreateVendor(ctx, db, store.Vendor{TenantID: ten.ID, Name: "Same"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate vendor: %v, want ErrConflict", err)
	}
	if _, err := store.GetTenant(ctx, db, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing tenant: %v, want ErrNotFound", err)
	}
}
