package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func TestParseDSNForcesParameters(t *testing.T) {
	norm, name, err := store.ParseDSN("app:secret@tcp(db:3306)/iacc_prod?clientFoundRows=true")
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
	if strings.Contains(norm, "clientFoundRows") {
		t.Errorf("normalized DSN %q keeps clientFoundRows (RowsAffected must count changed rows)", norm)
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

// WithTxLimit admits that many transactions at once: another waits for a slot,
// gives up when its context ends (its function never runs), and runs once
// a slot frees up; the gate's figures follow.
func TestMaxTxGate(t *testing.T) {
	t.Parallel()
	_, dsn := storetest.NewDBWithDSN(t)
	pool, err := store.Open(dsn, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	if pool.WithTxLimit(0) != pool || pool.TxGate().Limit != 0 {
		t.Fatal("no limit: want the pool itself, ungated")
	}
	db := pool.WithTxLimit(2)
	ctx := context.Background()

	in, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 2)
	for range 2 {
		go func() {
			held <- db.InTx(ctx, func(tx *sql.Tx) error {
				in <- struct{}{}
				<-release
				_, err := tx.ExecContext(ctx, "DO 1")
				return err
			})
		}()
	}
	<-in
	<-in
	if g := db.TxGate(); g.InUse != 2 || g.Limit != 2 || g.Waits != 0 {
		t.Fatalf("two transactions held: %+v", g)
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	ran := false
	err = db.InTx(short, func(*sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("third transaction while two are held: ran %v, err %v; want it refused at its deadline", ran, err)
	}

	third := make(chan error, 1)
	go func() {
		third <- db.InTx(ctx, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, "DO 1"); return err })
	}()
	close(release)
	for range 2 {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-third; err != nil {
		t.Fatalf("the waiting transaction: %v", err)
	}
	if g := db.TxGate(); g.InUse != 0 || g.Waits < 1 || g.WaitTime < 50*time.Millisecond {
		t.Fatalf("gate after: %+v; want none in use, the waits counted (at least the 50 ms one)", g)
	}
}
