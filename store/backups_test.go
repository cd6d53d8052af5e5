package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// Runs are recorded as running, then finished; the latest finished run of a
// kind and state is what the metrics and the overdue alert read.
func TestBackupRunsRecordAndLatest(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	if _, err := store.LastBackupRun(ctx, db, store.BackupKindBackup, store.BackupSucceeded); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no runs yet: err = %v, want ErrNotFound", err)
	}
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	ok1, err := store.StartBackupRun(ctx, db, store.BackupKindBackup, "20261120T020000Z", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.FinishBackupRun(ctx, db, ok1, store.BackupSucceeded, 1234, 1500*time.Millisecond, "", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	bad, _ := store.StartBackupRun(ctx, db, store.BackupKindBackup, "20261121T020000Z", t0.Add(24*time.Hour))
	long := strings.Repeat("é", 3000)
	if err := store.FinishBackupRun(ctx, db, bad, store.BackupFailed, 0, time.Second, long, t0.Add(24*time.Hour+time.Second)); err != nil {
		t.Fatalf("long error text: %v", err)
	}
	if err := store.FinishBackupRun(ctx, db, bad, "weird", 0, 0, "", t0); err == nil {
		t.Error("invalid state accepted")
	}
	running, _ := store.StartBackupRun(ctx, db, store.BackupKindBackup, "20261122T020000Z", t0.Add(48*time.Hour))
	verify, _ := store.StartBackupRun(ctx, db, store.BackupKindVerify, "20261120T020000Z", t0.Add(72*time.Hour))
	if err := store.FinishBackupRun(ctx, db, verify, store.BackupSucceeded, 1234, time.Second, "", t0.Add(72*time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}

	last, err := store.LastBackupRun(ctx, db, store.BackupKindBackup, store.BackupSucceeded)
	if err != nil || last.ID != ok1 || last.Bytes != 1234 || last.Duration != 1500*time.Millisecond || last.FinishedAt == nil ||
		!last.FinishedAt.Equal(t0.Add(2*time.Second)) || last.BackupID != "20261120T020000Z" {
		t.Fatalf("last success = %+v, %v", last, err)
	}
	anyLast, err := store.LastBackupRun(ctx, db, store.BackupKindBackup)
	if err != nil || anyLast.ID != bad || anyLast.State != store.BackupFailed || len([]rune(anyLast.Error)) != 1000 {
		t.Fatalf("last finished backup = id %d state %s error %d runes, %v", anyLast.ID, anyLast.State, len([]rune(anyLast.Error)), err)
	}
	v, err := store.LastBackupRun(ctx, db, store.BackupKindVerify)
	if err != nil || v.ID != verify {
		t.Fatalf("last verify = %+v, %v", v, err)
	}

	n, err := store.AbandonBackupRuns(ctx, db, store.BackupKindBackup, t0.Add(60*time.Hour), t0.Add(60*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("abandoned %d, %v; want the one running run", n, err)
	}
	runs, err := store.ListBackupRuns(ctx, db, store.BackupKindBackup, 10)
	if err != nil || len(runs) != 3 {
		t.Fatalf("list = %d runs, %v", len(runs), err)
	}
	if runs[0].ID != running || runs[0].State != store.BackupFailed || !strings.Contains(runs[0].Error, "abandoned") {
		t.Errorf("newest run = %+v, want the abandoned one", runs[0])
	}
	all, _ := store.ListBackupRuns(ctx, db, "", 10)
	if len(all) != 4 {
		t.Errorf("list of every kind = %d runs, want 4", len(all))
	}
}

func TestDatabaseHelpers(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	n, err := store.CountTables(ctx, db, db.Name())
	if err != nil || n < 10 {
		t.Fatalf("tables of the migrated database = %d, %v", n, err)
	}
	scratch := db.Name() + "_x_" + randomHex(3)
	if ok, _ := store.DatabaseExists(ctx, db, scratch); ok {
		t.Fatal("scratch exists before creation")
	}
	if err := store.CreateDatabase(ctx, db, scratch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.DropDatabase(context.Background(), db, scratch) })
	if ok, _ := store.DatabaseExists(ctx, db, scratch); !ok {
		t.Fatal("scratch missing after creation")
	}
	if n, _ := store.CountTables(ctx, db, scratch); n != 0 {
		t.Errorf("new database has %d tables", n)
	}
	names, err := store.ListDatabasesWithPrefix(ctx, db, db.Name()+"_x_")
	if err != nil || !slices.Equal(names, []string{scratch}) {
		t.Errorf("databases with prefix = %v, %v", names, err)
	}
	dsn, err := store.DSNForDatabase(storetest.DSNFor(db.Name()), scratch)
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(dsn, store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Name() != scratch {
		t.Errorf("DSNForDatabase opened %s", other.Name())
	}
	if err := store.DropDatabase(ctx, db, scratch); err != nil {
		t.Fatal(err)
	}
	if ok, _ := store.DatabaseExists(ctx, db, scratch); ok {
		t.Error("scratch exists after drop")
	}
}
