package backup

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// putFake stores a minimal backup (a manifest and a small file) under id.
func putFake(t *testing.T, st Store, id string, manifest bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.Put(ctx, DataName(id), strings.NewReader("not really a backup")); err != nil {
		t.Fatal(err)
	}
	if !manifest {
		return
	}
	at, _ := ParseID(id)
	b, _ := json.Marshal(Manifest{Format: FormatVersion, ID: id, File: DataName(id), StartedAt: at, FinishedAt: at, Tables: map[string]TableSum{}})
	if _, err := st.Put(ctx, ManifestName(id), strings.NewReader(string(b))); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionDir(t *testing.T) {
	t.Parallel()
	testRetention(t, newDirStore(t))
}

func TestRetentionS3(t *testing.T) {
	t.Parallel()
	testRetention(t, newS3Store(t))
}

// With 30 nightly backups stored, the 31st removes the oldest (its file and
// its manifest): 30 are kept. A second backup the same day removes nothing
// (retention counts days). Files of failed runs older than a day go; a
// younger one (a run that may still be uploading) stays.
func testRetention(t *testing.T, st Store) {
	ctx := context.Background()
	night := func(i int) time.Time { return time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC).AddDate(0, 0, i) }
	now := night(30).Add(time.Minute)
	b := setup(t, setupOpts{store: st, now: func() time.Time { return now }})
	for i := 0; i < 30; i++ {
		putFake(t, st, NewID(night(i)), true)
	}
	oldOrphan, freshOrphan := NewID(night(10).Add(time.Hour)), NewID(now.Add(-time.Hour))
	putFake(t, st, oldOrphan, false)
	putFake(t, st, freshOrphan, false)
	if _, err := st.Put(ctx, "notes.txt", strings.NewReader("not ours")); err != nil {
		t.Fatal(err)
	}

	m, err := b.svc.Run(ctx, night(30))
	if err != nil {
		t.Fatal(err)
	}
	list, err := b.svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 30 || list[0].ID != m.ID || list[29].ID != NewID(night(1)) {
		t.Fatalf("after the 31st nightly backup: %d backups, newest %s, oldest %s; want 30 from %s to %s",
			len(list), list[0].ID, list[len(list)-1].ID, m.ID, NewID(night(1)))
	}
	names, _ := st.List(ctx)
	for _, gone := range []string{DataName(NewID(night(0))), ManifestName(NewID(night(0))), DataName(oldOrphan)} {
		if slices.Contains(names, gone) {
			t.Errorf("%s was not deleted", gone)
		}
	}
	for _, kept := range []string{DataName(freshOrphan), "notes.txt", DataName(NewID(night(1)))} {
		if !slices.Contains(names, kept) {
			t.Errorf("%s was deleted", kept)
		}
	}

	// A backup by hand later the same day: 31 backups over 30 days.
	now = now.Add(3 * time.Hour)
	if _, err := b.svc.Run(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if list, _ := b.svc.List(ctx); len(list) != 31 || list[30].ID != NewID(night(1)) {
		t.Errorf("after a second backup the same day: %d backups, oldest %s", len(list), list[len(list)-1].ID)
	}

	// A smaller policy prunes on the next call.
	short := b.with(t, func(c *Config) { c.KeepDays = 7 })
	deleted, err := short.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := b.svc.List(ctx); len(list) != 8 || len(deleted) != 23 {
		t.Errorf("keep 7 days: %d backups left, %d deleted", len(list), len(deleted))
	}
}
