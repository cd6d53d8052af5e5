package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// seedBytes fills table bench_rows with about n bytes of SQL: order-like
// rows with text (half random, so that it does not compress to nothing),
// DECIMALs, DATETIME(6), NULLs and a BLOB.
func seedBytes(tb testing.TB, db *store.DB, n int64) {
	tb.Helper()
	mustExec(tb, db, `CREATE TABLE bench_rows (
		id BIGINT UNSIGNED NOT NULL PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, note VARCHAR(1000) NOT NULL,
		amount DECIMAL(14,2) NOT NULL, created_at DATETIME(6) NOT NULL, deleted_at DATETIME(6) NULL, data BLOB NULL,
		KEY ix_tenant (tenant_id, id)) ENGINE=InnoDB`)
	rnd := make([]byte, 96)
	var written int64
	id := 0
	for written < n {
		var sb strings.Builder
		sb.WriteString("INSERT INTO bench_rows VALUES ")
		for i := 0; i < 2000; i++ {
			id++
			_, _ = rand.Read(rnd)
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,%d,'order %d for Müller & Söhne: %s','%d.%02d','2026-11-%02d 10:%02d:%02d.%06d',%s,X'%s')",
				id, id%50+1, id, hex.EncodeToString(rnd[:64]), id%100000, id%100, id%28+1, id%60, id%60, id%1000000,
				map[bool]string{true: "NULL", false: "'2026-12-01 00:00:00'"}[id%3 != 0], hex.EncodeToString(rnd[64:]))
		}
		written += int64(sb.Len())
		mustExec(tb, db, sb.String())
	}
}

// BenchmarkRun backs up a database of about IACC_BENCH_BACKUP_MB megabytes
// of SQL (default 16) into a local directory and reports the SQL throughput,
// the compressed size, and the peak memory of the run: the Go heap (sampled
// every millisecond) and, on Linux, the process's peak RSS (VmHWM, reset
// after seeding through /proc/self/clear_refs). Both stay flat as the
// database grows: the dump streams through gzip and age into the store.
//
//	IACC_BENCH_BACKUP_MB=200 go test -run '^$' -bench BenchmarkRun -benchtime 1x ./worker/backup/
//
// It reports; it asserts nothing about speed.
func BenchmarkRun(b *testing.B) {
	mb := int64(16)
	if v, err := strconv.ParseInt(os.Getenv("IACC_BENCH_BACKUP_MB"), 10, 64); err == nil && v > 0 {
		mb = v
	}
	db, dsn := storetest.NewDBWithDSN(b)
	seedBytes(b, db, mb<<20)
	id, _ := age.GenerateX25519Identity()
	dir, err := NewDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(Config{DB: db, DSN: dsn, Store: dir, Recipients: []string{id.Recipient().String()}, KeepDays: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	var peakHeap atomic.Uint64
	stop := sampleHeap(&peakHeap)
	base := time.Now().Add(time.Hour)
	var m Manifest
	i := 0
	for b.Loop() {
		m, err = svc.Run(ctx, base.Add(time.Duration(i)*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
	b.ReportMetric(float64(m.SQLBytes)/1e6, "sql-MB")
	b.ReportMetric(float64(m.Bytes)/1e6, "file-MB")
	b.ReportMetric(float64(m.SQLBytes)/1e6/m.Duration().Seconds(), "sql-MB/s")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MiB")
	if rss, ok := peakRSS(); ok {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	}
}

// sampleHeap records the largest live Go heap until stop is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// resetPeakRSS resets the kernel's peak RSS (VmHWM) of this process.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(rest))
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err == nil
			}
		}
	}
	return 0, false
}
