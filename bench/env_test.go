package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// A second run on the same database refuses to start, before it drops or
// flushes anything; once the first run ends, the database is free again.
func TestSecondRunOnTheSameDatabaseRefusesBeforeDroppingIt(t *testing.T) {
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "iacc_bench_lock_" + hex.EncodeToString(b)
	cfg := DefaultConfig()
	cfg.MySQLServer, cfg.Database, cfg.Log = storetest.MySQLServerDSN(), name, io.Discard
	cfg.RedisAddr = "127.0.0.1:1" // never reached: the database's reservation comes first

	if err := store.EnsureDatabase(ctx, storetest.DSNFor(name)); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(storetest.DSNFor(name), store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+store.QuoteIdent(name))
		_ = db.Close()
	})
	if _, err := db.ExecContext(ctx, "CREATE TABLE first_run (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	first := &Harness{cfg: cfg}
	if err := first.reserveDatabase(ctx); err != nil {
		t.Fatalf("first reservation: %v", err)
	}
	second, err := newHarness(ctx, cfg)
	second.Close()
	if err == nil || !strings.Contains(err.Error(), "in use by another iaccbench run") {
		t.Fatalf("second run: err = %v; want the database in use", err)
	}
	if got := storetest.Strings(t, db, "SHOW TABLES LIKE 'first_run'"); len(got) != 1 {
		t.Fatalf("the first run's table is gone after the second run refused: %v", got)
	}
	// The refused run's Close releases nothing of the first run's.
	refused := &Harness{cfg: cfg}
	err = refused.reserveDatabase(ctx)
	refused.Close()
	if err == nil || !strings.Contains(err.Error(), "in use by another iaccbench run") {
		t.Fatalf("reservation while the first run holds the database, after a refused run's Close: err = %v", err)
	}

	first.Close()
	third := &Harness{cfg: cfg}
	defer third.Close()
	if err := third.reserveDatabase(ctx); err != nil {
		t.Fatalf("reservation after the first run ended: %v", err)
	}
}
