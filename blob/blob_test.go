package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirPutOpenDelete(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Put(ctx, "tenants/1/po/7/v1.pdf", strings.NewReader("hello"))
	if err != nil || n != 5 {
		t.Fatalf("put: n=%d err=%v", n, err)
	}
	if _, err := d.Put(ctx, "tenants/1/po/7/v1.pdf", strings.NewReader("hello again")); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	rc, err := d.Open(ctx, "tenants/1/po/7/v1.pdf")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "hello again" {
		t.Fatalf("got %q", got)
	}
	// A Put that fails while writing leaves the key and no temporary file.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Put(cctx, "tenants/1/po/7/v1.pdf", strings.NewReader("never")); !errors.Is(err, context.Canceled) {
		t.Fatalf("put with an ended context: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(d.Root(), "tenants/1/po/7"))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if err := d.Delete(ctx, "tenants/1/po/7/v1.pdf"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(ctx, "tenants/1/po/7/v1.pdf"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
	if err := d.Delete(ctx, "tenants/1/po/7/v1.pdf"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
}

func TestDirRejectsEscapingKeys(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "../x", "a/../../x", "/abs", "a//b", "./a", `a\b`, ".hidden"} {
		if _, err := d.Put(context.Background(), k, bytes.NewReader(nil)); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}

func TestDirPutHonoursCancellation(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Put(ctx, "x.pdf", strings.NewReader("data")); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if _, err := d.Open(context.Background(), "x.pdf"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancelled put left a file: %v", err)
	}
}

// A directory removed behind the store's back is made again by the next Put.
func TestDirPutRemakesRemovedDir(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "tenants/1/po/0/7-v1.pdf", strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(d.Root(), "tenants")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "tenants/1/po/0/7-v2.pdf", strings.NewReader("two")); err != nil {
		t.Fatalf("put after the directory was removed: %v", err)
	}
	rc, err := d.Open(ctx, "tenants/1/po/0/7-v2.pdf")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "two" {
		t.Fatalf("got %q", got)
	}
}

// Put returns only once the blob's name is durable: it syncs the key's
// directory after the rename (the file is there under its name when it
// does), and each directory it creates into its parent. A directory sync
// that fails fails the Put.
func TestDirPutSyncsTheDirectoriesItChanges(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const key = "archive/audit_log/2026-12/000000000001-000000000500.jsonl.gz"
	final := filepath.Join(d.Root(), filepath.FromSlash(key))
	var synced []string
	d.syncDir = func(dir string) error {
		rel, err := filepath.Rel(d.Root(), dir)
		if err != nil {
			return err
		}
		if _, err := os.Stat(final); err == nil {
			rel += " (blob in place)"
		}
		synced = append(synced, filepath.ToSlash(rel))
		return fsyncDir(dir)
	}
	if _, err := d.Put(ctx, key, strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	want := []string{".", "archive", "archive/audit_log", "archive/audit_log/2026-12 (blob in place)"}
	if strings.Join(synced, ", ") != strings.Join(want, ", ") {
		t.Errorf("first put synced %q, want %q", synced, want)
	}

	// The directory exists now: only it is synced, after the rename.
	synced = nil
	if _, err := d.Put(ctx, key, strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"archive/audit_log/2026-12 (blob in place)"}; strings.Join(synced, ", ") != strings.Join(want, ", ") {
		t.Errorf("second put synced %q, want %q", synced, want)
	}

	failure := errors.New("disk gone")
	d.syncDir = func(string) error { return failure }
	if _, err := d.Put(ctx, key, strings.NewReader("three")); !errors.Is(err, failure) {
		t.Errorf("put with a failing directory sync: %v, want it to fail with %v", err, failure)
	}
}

// PutNew stores a new key, durably as Put, and leaves a key that holds a
// file as it is.
func TestDirPutNewKeepsTheFirstFile(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const key = "keys/first.txt"
	var synced []string
	d.syncDir = func(dir string) error {
		if _, err := os.Stat(filepath.Join(d.Root(), key)); err == nil {
			synced = append(synced, filepath.Base(dir)+" (file in place)")
		}
		return fsyncDir(dir)
	}
	for i, body := range []string{"first", "second"} {
		created, err := d.PutNew(ctx, key, strings.NewReader(body))
		if err != nil || created != (i == 0) {
			t.Fatalf("PutNew %q: created %v, err %v; want created %v", body, created, err, i == 0)
		}
	}
	got, err := os.ReadFile(filepath.Join(d.Root(), key))
	if err != nil || string(got) != "first" {
		t.Errorf("the key holds %q (%v), want the first file", got, err)
	}
	if want := []string{"keys (file in place)"}; strings.Join(synced, ", ") != strings.Join(want, ", ") {
		t.Errorf("synced after the link: %q, want %q", synced, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Root(), "keys")); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
