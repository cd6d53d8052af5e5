package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/backup"
)

// Scenario 5b: backup of a generated database of at least 200 MB.
//
// A separate database (<-database>_backup, iacc_bench_backup by default)
// is migrated and filled with purchase orders, their items, audit log rows
// and outbox events (multi-row INSERTs with varied text, so that the dump
// does not compress to nothing) until its rows take 200 MB: DATA_LENGTH in
// information_schema, the clustered indexes, secondary indexes not counted.
// It is kept between runs: when it is already that large it is reused;
// IACCBENCH_BACKUP_REGENERATE=1 rebuilds it, IACCBENCH_BACKUP_MB changes
// the target.
//
// The measured step runs `iacc backup run` as a child process against it,
// with IACC_BACKUP_DIR a temp dir and IACC_BACKUP_AGE_RECIPIENT a freshly
// generated age key, and reports the duration and throughput from the
// backup's manifest (SQL bytes before compression, encrypted bytes stored)
// and the child's peak RSS (VmHWM; see maxRSSMB for why not ru_maxrss),
// twice: the fastest run and the highest peak count. The ceiling: reading every
// row of the same tables over database/sql on one connection, with no
// encoding, compression or encryption.
//
// Target: the child's peak RSS < 100 MB.
func backupScenario() Scenario {
	return Scenario{
		ID: "backup", Aliases: []string{"5b"}, Server: true,
		Title: "backup: `iacc backup run` of a generated ≥200 MB database: duration, bytes/s, peak RSS",
		Run:   runBackup,
	}
}

const (
	backupRSSTargetMB = 100.0
	backupChunkOrders = 1000 // orders per generated transaction
	backupGenWorkers  = 2
	backupRunTimeout  = 15 * time.Minute
	backupRuns        = 2 // of the ceiling and of the backup
)

type backupOptions struct {
	TargetMB   int  // IACCBENCH_BACKUP_MB (200)
	Regenerate bool // IACCBENCH_BACKUP_REGENERATE
}

func backupOptionsFrom() (backupOptions, error) {
	o := backupOptions{TargetMB: 200}
	var errs []error
	envInt(&errs, "IACCBENCH_BACKUP_MB", &o.TargetMB, 1, 100_000)
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("IACCBENCH_BACKUP_REGENERATE"))); v {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		o.Regenerate = true
	default:
		errs = append(errs, fmt.Errorf("IACCBENCH_BACKUP_REGENERATE: want true or false, got %q", v))
	}
	return o, errors.Join(errs...)
}

// dsnFor is the DSN of another database on the run's server.
func (h *Harness) dsnFor(database string) string {
	base := h.cfg.MySQLServer
	i := strings.LastIndex(base, "/")
	if i < 0 {
		return base + "/" + database
	}
	return base[:i+1] + database + base[i+1:]
}

func runBackup(ctx context.Context, h *Harness) ([]Row, error) {
	opt, err := backupOptionsFrom()
	if err != nil {
		return nil, err
	}
	h.StopServer() // the backup has the machine to itself
	bin, err := h.binary(ctx)
	if err != nil {
		return nil, err
	}
	name := h.cfg.Database + "_backup"
	const scenario = "backup (iacc backup run)"
	var rows []Row

	db, info, err := h.backupDatabase(ctx, name, opt)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows = append(rows, Row{Scenario: scenario, Step: "database " + name,
		Value: fmt.Sprintf("%.0f MB of rows + %.0f MB of indexes", mb(info.data), mb(info.index)), Notes: info.String(),
		Metrics: map[string]float64{"db_data_mb": round2(mb(info.data)), "db_index_mb": round2(mb(info.index)),
			"db_rows": float64(info.rows), "generate_s": round2(info.took.Seconds())}})

	// Ceiling: every row read over database/sql on one connection, twice
	// (the first pass also warms the caches); the faster counts.
	h.logf("backup ceiling: read every row of %s (×%d)", name, backupRuns)
	waited, busy := h.waitQuiet(ctx)
	var ceil Row
	var reads []string
	for i := range backupRuns {
		cst := stepStats{Clients: 1, Metrics: map[string]float64{}}
		probe := h.cpuProbe()
		probe.begin()
		readRows, readBytes, readTook, err := readAllRows(ctx, db)
		probe.end(&cst)
		if err != nil {
			return rows, err
		}
		reads = append(reads, fmt.Sprintf("%.2fs", readTook.Seconds()))
		rate := round2(float64(readRows) / readTook.Seconds())
		if i > 0 && rate <= ceil.Throughput {
			continue
		}
		ceil = Row{Scenario: scenario, Step: "ceiling: read every row (database/sql, 1 connection, no encoding)", Clients: 1,
			OK: int(readRows), Throughput: rate, Metrics: cst.Metrics}
		ceil.Metrics["read_mb_per_s"] = round2(mb(readBytes) / readTook.Seconds())
		ceil.Notes = fmt.Sprintf("throughput in rows/s; %d rows, %.0f MB of column data in %.1fs (%.1f MB/s); %s",
			readRows, mb(readBytes), readTook.Seconds(), mb(readBytes)/readTook.Seconds(), strings.Join(cst.Notes, "; "))
	}
	ceil.note(fmt.Sprintf("best of %d reads (%s)", backupRuns, strings.Join(reads, ", ")))
	quietNotes(&ceil, waited, busy)
	rows = append(rows, ceil)

	// The backup, as ops run it: `iacc backup run` in its own process,
	// backupRuns times, each into an empty directory; the fastest counts,
	// and the largest peak RSS.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return rows, fmt.Errorf("generate age key: %w", err)
	}
	h.logf("backup: iacc backup run (%s, %.0f MB of rows) ×%d", name, mb(info.data), backupRuns)
	waited, busy = h.waitQuiet(ctx)
	var best backupResult
	var peak, rusage float64
	var runs []string
	for i := range backupRuns {
		res, err := h.runBackupChild(ctx, bin, name, id.Recipient().String(), i)
		if err != nil {
			return rows, err
		}
		runs = append(runs, fmt.Sprintf("%.2fs", res.m.Duration().Seconds()))
		peak, rusage = max(peak, res.hwmMB), max(rusage, res.rusageMB)
		if i == 0 || res.m.Duration() < best.m.Duration() {
			best = res
		}
	}
	m := best.m
	dur := max(m.Duration(), time.Millisecond)
	br := Row{Scenario: scenario, Step: fmt.Sprintf("iacc backup run (child): %.0f MB SQL", mb(m.SQLBytes)), Clients: 1,
		OK: int(m.Rows()), Throughput: round2(float64(m.Rows()) / dur.Seconds()), Metrics: best.metrics}
	br.setCeiling(ceil)
	br.Metrics["duration_s"] = round2(dur.Seconds())
	br.Metrics["process_s"] = round2(best.wall.Seconds())
	br.Metrics["sql_mb"], br.Metrics["file_mb"] = round2(mb(m.SQLBytes)), round2(mb(m.Bytes))
	br.Metrics["sql_mb_per_s"] = round2(mb(m.SQLBytes) / dur.Seconds())
	br.Metrics["file_mb_per_s"] = round2(mb(m.Bytes) / dur.Seconds())
	br.note(fmt.Sprintf("throughput in rows/s; %.1fs (process %.1fs): %.0f MB SQL at %.1f MB/s → %.0f MB gzip+age at %.1f MB/s; %d tables, %d rows",
		dur.Seconds(), best.wall.Seconds(), mb(m.SQLBytes), br.Metrics["sql_mb_per_s"], mb(m.Bytes), br.Metrics["file_mb_per_s"], len(m.Tables), m.Rows()))
	br.note(best.cpuNote)
	br.note(fmt.Sprintf("fastest of %d runs (%s)", backupRuns, strings.Join(runs, ", ")))
	quietNotes(&br, waited, busy)
	rows = append(rows, br)

	rss := Row{Scenario: scenario, Step: "backup child peak RSS", Value: fmt.Sprintf("%.0f MB", peak),
		Metrics: map[string]float64{"rss_peak_mb": round2(peak), "rusage_maxrss_mb": round2(rusage)}}
	rss.note(fmt.Sprintf("VmHWM of the child (its RSS high-water mark), largest of %d runs; "+
		"rusage ru_maxrss said %.0f MB, but it also counts the harness's RSS when the child was exec'd (vfork)", backupRuns, rusage))
	rss.check(fmt.Sprintf("peak < %.0f MB", backupRSSTargetMB), peak > 0 && peak < backupRSSTargetMB)
	rows = append(rows, rss)
	return rows, nil
}

func quietNotes(r *Row, waited time.Duration, busy float64) {
	if waited > time.Second {
		r.note(fmt.Sprintf("waited %s for a quiet machine", waited.Round(time.Second)))
	}
	if busy >= noiseThreshold {
		r.note(fmt.Sprintf("machine busy before the step (%.2f cores)", busy))
	}
}

// childEnv is the harness's environment without IACC_* variables, plus kv.
func childEnv(kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "IACC_") {
			env = append(env, e)
		}
	}
	return append(env, kv...)
}

type backupResult struct {
	m        backup.Manifest
	wall     time.Duration // the process, start to exit
	hwmMB    float64       // VmHWM, last seen
	rusageMB float64       // ru_maxrss
	metrics  map[string]float64
	cpuNote  string
}

// runBackupChild runs `iacc backup run` on database name, into a new
// directory (removed afterwards), and measures it.
func (h *Harness) runBackupChild(ctx context.Context, bin, name, recipient string, run int) (backupResult, error) {
	var res backupResult
	work, err := os.MkdirTemp(h.tmp, "backup-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work) // the encrypted dump: tens of MB
	dir := filepath.Join(work, "backups")
	var out bytes.Buffer
	cmd := exec.Command(bin, "backup", "run")
	cmd.Dir = work // local mode writes ./var there
	cmd.Env = append(childEnv(
		"IACC_MYSQL_DSN="+h.dsnFor(name),
		"IACC_REDIS_URL="+h.RedisURL(),
		"IACC_BACKUP_DIR="+dir,
		"IACC_BACKUP_AGE_RECIPIENT="+recipient,
		"IACC_LOG_LEVEL=warn",
	), h.cfg.ChildEnv...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childProcAttr()
	// The child's CPU comes from its rusage: its /proc entry is gone by
	// the time the probe ends.
	cpu := newCPUProbe(func() map[string][]int {
		procs := map[string][]int{"bench": {os.Getpid()}}
		if pids := findPIDs("mariadbd", "mysqld"); len(pids) > 0 {
			procs["db"] = pids
		}
		return procs
	}, []string{"db", "bench"})
	st := stepStats{Metrics: map[string]float64{}}
	cpu.begin()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start iacc backup run: %w", err)
	}
	hwm := watchHWM(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timeout := time.NewTimer(backupRunTimeout)
	defer timeout.Stop()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		hwm()
		return res, ctx.Err()
	case <-timeout.C:
		_ = cmd.Process.Kill()
		<-done
		hwm()
		return res, fmt.Errorf("iacc backup run did not finish in %s", backupRunTimeout)
	}
	res.wall = time.Since(start)
	res.hwmMB = mb(hwm())
	cpu.end(&st)
	if err != nil {
		return res, fmt.Errorf("iacc backup run: %w\n%s", err, out.String())
	}
	res.rusageMB = maxRSSMB(cmd.ProcessState)
	cores := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() / res.wall.Seconds()
	st.Metrics["cpu_iacc_cores"] = round2(cores)
	st.Metrics["cpu_other_cores"] = round2(max(0, st.Metrics["cpu_other_cores"]-cores))
	res.metrics = st.Metrics
	res.cpuNote = fmt.Sprintf("cpu iacc %.2f db %.2f bench %.2f other %.2f", cores,
		st.Metrics["cpu_db_cores"], st.Metrics["cpu_bench_cores"], st.Metrics["cpu_other_cores"])
	if res.m, err = readManifest(dir); err != nil {
		return res, fmt.Errorf("%w; output of iacc backup run:\n%s", err, out.String())
	}
	h.logf("backup: run %d: %s", run+1, strings.TrimSpace(out.String()))
	return res, nil
}

// watchHWM follows a process's VmHWM (its peak RSS so far, which only
// grows) every 10 ms; the returned function stops and returns the last
// value seen, in bytes.
func watchHWM(pid int) func() int64 {
	stop := make(chan struct{})
	done := make(chan struct{})
	var peak int64
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := readStatusKB(pid, "VmHWM:"); err == nil && v<<10 > peak {
				peak = v << 10
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() int64 {
		once.Do(func() { close(stop); <-done })
		return peak
	}
}

// readStatusKB reads a "Key:   123 kB" line of /proc/<pid>/status.
func readStatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// maxRSSMB reads ru_maxrss from a finished process's rusage: kilobytes on
// Linux, bytes on macOS. Reflection keeps this file free of build tags.
// On Linux it is at least the harness's own RSS when the child was
// started: Go starts children with vfork, and exec records the shared
// address space's high-water mark as the child's.
func maxRSSMB(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	u := reflect.ValueOf(ps.SysUsage())
	if u.Kind() == reflect.Pointer {
		u = u.Elem()
	}
	if u.Kind() != reflect.Struct {
		return 0
	}
	f := u.FieldByName("Maxrss")
	if !f.IsValid() || !f.CanInt() {
		return 0
	}
	v := float64(f.Int())
	if runtime.GOOS == "darwin" {
		return v / (1 << 20)
	}
	return v / 1024
}

// readManifest decodes the one manifest the run wrote into dir.
func readManifest(dir string) (backup.Manifest, error) {
	var m backup.Manifest
	files, _ := filepath.Glob(filepath.Join(dir, "*"+".manifest.json"))
	if len(files) != 1 {
		return m, fmt.Errorf("backup: want 1 manifest in %s, found %d", dir, len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return m, fmt.Errorf("read manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode manifest %s: %w", files[0], err)
	}
	return m, nil
}

// readAllRows reads every row of every base table of db's database, in
// primary-key order as the dump does, and counts the bytes of the values.
func readAllRows(ctx context.Context, db *store.DB) (rows, bytes int64, took time.Duration, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	tables, err := baseTables(ctx, conn)
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	for _, t := range tables {
		rs, err := conn.QueryContext(ctx, "SELECT * FROM "+store.QuoteIdent(t))
		if err != nil {
			return rows, bytes, 0, fmt.Errorf("read %s: %w", t, err)
		}
		cols, _ := rs.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				rs.Close()
				return rows, bytes, 0, fmt.Errorf("read %s: %w", t, err)
			}
			rows++
			for _, v := range vals {
				bytes += int64(len(v))
			}
		}
		if err := rs.Err(); err != nil {
			rs.Close()
			return rows, bytes, 0, fmt.Errorf("read %s: %w", t, err)
		}
		rs.Close()
	}
	return rows, bytes, time.Since(start), nil
}

func baseTables(ctx context.Context, q store.Querier) ([]string, error) {
	rs, err := q.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var t string
		if err := rs.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rs.Err()
}

// backupDBInfo describes the generated database.
type backupDBInfo struct {
	data      int64 // DATA_LENGTH: rows (clustered indexes)
	index     int64 // INDEX_LENGTH: secondary indexes
	rows      int64 // approximate (information_schema)
	orders    int64
	reused    bool
	took      time.Duration // generation
	generated int64         // orders generated this run
}

func (i backupDBInfo) String() string {
	s := fmt.Sprintf("%d purchase orders, ~%d rows in all (sizes and row count: information_schema)", i.orders, i.rows)
	if i.reused {
		return s + "; reused from an earlier run (IACCBENCH_BACKUP_REGENERATE=1 rebuilds it)"
	}
	return s + fmt.Sprintf("; generated in %.0fs", i.took.Seconds())
}

// backupDatabase returns the generated database, generating it when it is
// missing, smaller than the target, or opt.Regenerate.
func (h *Harness) backupDatabase(ctx context.Context, name string, opt backupOptions) (*store.DB, backupDBInfo, error) {
	var info backupDBInfo
	if !strings.HasPrefix(name, "iacc_bench") || strings.ContainsAny(name, "`/?") {
		return nil, info, fmt.Errorf("refusing to use database %q: its name must start with iacc_bench", name)
	}
	target := int64(opt.TargetMB) << 20
	size, _, _, err := h.schemaSize(ctx, name)
	if err != nil {
		return nil, info, err
	}
	start := time.Now()
	if opt.Regenerate || size < target {
		h.logf("backup: generating database %s (≥ %d MB; it has %.0f MB)", name, opt.TargetMB, mb(size))
		if err := h.dropDatabase(ctx, name); err != nil {
			return nil, info, err
		}
	} else {
		info.reused = true
		h.logf("backup: reusing database %s (%.0f MB)", name, mb(size))
	}
	if err := store.EnsureDatabase(ctx, h.dsnFor(name)); err != nil {
		return nil, info, err
	}
	db, err := store.Open(h.dsnFor(name), store.Options{MaxOpenConns: 8})
	if err != nil {
		return nil, info, err
	}
	if _, err := db.Migrate(ctx, nil); err != nil {
		db.Close()
		return nil, info, err
	}
	if !info.reused {
		if info.generated, err = generateBackupData(ctx, db, target, h.logf); err != nil {
			db.Close()
			return nil, info, err
		}
		info.took = time.Since(start)
	}
	if info.data, info.index, info.rows, err = h.schemaSize(ctx, name); err != nil {
		db.Close()
		return nil, info, err
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM purchase_orders").Scan(&info.orders); err != nil {
		db.Close()
		return nil, info, fmt.Errorf("count orders: %w", err)
	}
	return db, info, nil
}

// schemaSize is a database's data and index size and approximate row
// count in information_schema (0 when it does not exist).
func (h *Harness) schemaSize(ctx context.Context, name string) (data, index, rows int64, err error) {
	err = h.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(DATA_LENGTH), 0), COALESCE(SUM(INDEX_LENGTH), 0), COALESCE(SUM(TABLE_ROWS), 0)
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, name).Scan(&data, &index, &rows)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("size of database %s: %w", name, err)
	}
	return data, index, rows, nil
}

func (h *Harness) dropDatabase(ctx context.Context, name string) error {
	if _, err := h.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+store.QuoteIdent(name)); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// generateBackupData fills an empty, migrated database with tenants,
// vendors and purchase orders (items, audit log rows, outbox events) until
// its rows (DATA_LENGTH) reach target bytes. It returns the orders written.
func generateBackupData(ctx context.Context, db *store.DB, target int64, logf func(string, ...any)) (int64, error) {
	type tenant struct {
		id, user int64
		vendors  []int64
	}
	var tenants []tenant
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		for t := range 4 {
			name := fmt.Sprintf("Backup Bench Tenant %d", t+1)
			tn, err := store.CreateTenant(ctx, tx, name, store.TenantSettings{AccountingEmails: []string{fmt.Sprintf("ap@tenant%d.bench.test", t+1)}})
			if err != nil {
				return err
			}
			u, err := store.CreateUser(ctx, tx, store.User{TenantID: tn.ID, Email: fmt.Sprintf("buyer@tenant%d.bench.test", t+1),
				PasswordHash: "not-a-login", Role: store.RoleAdmin})
			if err != nil {
				return err
			}
			ten := tenant{id: tn.ID, user: u.ID}
			for v := range 50 {
				vd, err := store.CreateVendor(ctx, tx, store.Vendor{TenantID: tn.ID, Name: fmt.Sprintf("%s Supplies %02d GmbH", benchSurnames[v%len(benchSurnames)], v+1),
					Email: fmt.Sprintf("orders@vendor%02d.tenant%d.bench.test", v+1, t+1), Address: fmt.Sprintf("%d Industriestraße, %05d Berlin", v+3, 10115+v)})
				if err != nil {
					return err
				}
				ten.vendors = append(ten.vendors, vd.ID)
			}
			tenants = append(tenants, ten)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("generate tenants: %w", err)
	}
	var next int64 // chunks handed out
	var mu sync.Mutex
	var written int64
	base := time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)
	size := func() (int64, error) {
		for _, t := range []string{"purchase_orders", "purchase_order_items", "audit_log", "outbox_events"} {
			if _, err := db.ExecContext(ctx, "ANALYZE TABLE "+t); err != nil {
				return 0, fmt.Errorf("analyze %s: %w", t, err)
			}
		}
		var s int64
		err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(DATA_LENGTH), 0) FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE()`).Scan(&s)
		return s, err
	}
	// Rounds: generate what the last measured bytes/order says is missing
	// (+5 %), measure again.
	perOrder := int64(1500) // first guess, bytes of rows per order
	start := time.Now()
	for round := 0; ; round++ {
		cur, err := size()
		if err != nil {
			return written, err
		}
		if written > 0 {
			perOrder = max(200, cur/written)
		}
		if cur >= target {
			logf("backup: generated %d orders, %.0f MB, in %.0fs", written, mb(cur), time.Since(start).Seconds())
			return written, nil
		}
		if round > 20 {
			return written, fmt.Errorf("generate: %.0f MB after %d rounds, want %.0f MB", mb(cur), round, mb(target))
		}
		need := (target-cur)*105/100/perOrder + 1
		chunks := (need + backupChunkOrders - 1) / backupChunkOrders
		logf("backup: %.0f MB of %.0f MB, writing %d more orders", mb(cur), mb(target), chunks*backupChunkOrders)
		first := next
		next += chunks
		var wg sync.WaitGroup
		errs := make([]error, backupGenWorkers)
		for w := range backupGenWorkers {
			wg.Go(func() {
				for c := first + int64(w); c < first+chunks && ctx.Err() == nil; c += backupGenWorkers {
					t := tenants[c%int64(len(tenants))]
					if err := writeOrderChunk(ctx, db, c, t.id, t.user, t.vendors, base); err != nil {
						errs[w] = err
						return
					}
					mu.Lock()
					written += backupChunkOrders
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return written, err
		}
		if ctx.Err() != nil {
			return written, ctx.Err()
		}
	}
}

var benchSurnames = []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
	"Dupont", "Rossi", "García", "Nowak", "Jensen", "O'Brien", "Novák", "Kowalski", "Silva", "Virtanen"}

var benchNotes = []string{"Deliver to dock %d, ring the bell twice.", "Invoice to accounts payable, reference %s.",
	"Urgent: needed before the quarterly audit (ticket %s).", "Partial deliveries accepted; call %s before arrival.",
	"Frame agreement FA-%s applies.", "Ship with the %s order; one invoice for both."}

// writeOrderChunk writes orders [c*chunk+1, (c+1)*chunk] of one tenant with
// 1–9 items each, an audit log row and an outbox event, in one
// transaction of four multi-row INSERTs.
func writeOrderChunk(ctx context.Context, db *store.DB, c, tenantID, userID int64, vendors []int64, base time.Time) error {
	rnd := rand.New(rand.NewPCG(uint64(c), 0x1acc))
	var po, items, audit, outbox strings.Builder
	po.WriteString("INSERT INTO purchase_orders (id, tenant_id, vendor_id, status, currency, notes, total_amount, invoiced_amount, version, created_by, created_at, updated_at) VALUES ")
	items.WriteString("INSERT INTO purchase_order_items (purchase_order_id, line_no, description, quantity, unit_price, line_total) VALUES ")
	audit.WriteString("INSERT INTO audit_log (tenant_id, actor_id, action, entity_type, entity_id, before_state, after_state, request_id, created_at) VALUES ")
	outbox.WriteString("INSERT INTO outbox_events (tenant_id, event_type, aggregate_type, aggregate_id, payload, created_at, published_at, publish_attempts, dispatched_at) VALUES ")
	statuses := []string{"submitted", "submitted", "approved", "approved", "received", "closed", "cancelled"}
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rnd.IntN(16)]
		}
		return string(b)
	}
	nItem := 0
	for k := range int64(backupChunkOrders) {
		id := c*backupChunkOrders + k + 1
		vendor := vendors[rnd.IntN(len(vendors))]
		status := statuses[rnd.IntN(len(statuses))]
		created := base.Add(time.Duration(id) * 37 * time.Second).Add(time.Duration(rnd.IntN(1e6)) * time.Microsecond)
		ts := created.Format("2006-01-02 15:04:05.000000")
		note := fmt.Sprintf(benchNotes[rnd.IntN(len(benchNotes))], hex(8))
		if rnd.IntN(3) == 0 {
			note += " " + fmt.Sprintf(benchNotes[rnd.IntN(len(benchNotes))], hex(6))
		}
		n := 1 + rnd.IntN(9)
		var total int64 // cents
		for line := 1; line <= n; line++ {
			cat := itemCatalog[rnd.IntN(len(itemCatalog))]
			qty := 1 + rnd.IntN(40)
			price := 100 + rnd.Int64N(50000) // cents
			lt := int64(qty) * price
			total += lt
			if nItem > 0 {
				items.WriteByte(',')
			}
			nItem++
			fmt.Fprintf(&items, "(%d,%d,'%s — SKU %s-%s',%d.000,%d.%02d,%d.%02d)", id, line, sqlQuote(cat.desc),
				strings.ToUpper(hex(4)), hex(6), qty, price/100, price%100, lt/100, lt%100)
		}
		if k > 0 {
			po.WriteByte(',')
			audit.WriteByte(',')
			outbox.WriteByte(',')
		}
		fmt.Fprintf(&po, "(%d,%d,%d,'%s','EUR','%s',%d.%02d,0,1,%d,'%s','%s')", id, tenantID, vendor, status, sqlQuote(note),
			total/100, total%100, userID, ts, ts)
		summary := fmt.Sprintf(`{"id":%d,"number":"%s","vendor_id":%d,"status":"%s","currency":"EUR","total_amount":"%d.%02d","items":%d,"version":1}`,
			id, store.FormatPONumber(id), vendor, status, total/100, total%100, n)
		fmt.Fprintf(&audit, "(%d,%d,'purchase_order.create','purchase_order',%d,NULL,'%s','%s','%s')", tenantID, userID, id, summary, hex(24), ts)
		fmt.Fprintf(&outbox, "(%d,'purchase_order.created','purchase_order',%d,'%s','%s','%s',1,'%s')", tenantID, id, summary, ts, ts, ts)
	}
	return db.InTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []*strings.Builder{&po, &items, &audit, &outbox} {
			if _, err := tx.ExecContext(ctx, q.String()); err != nil {
				s := q.String()
				return fmt.Errorf("generate orders (%s…): %w", s[:min(len(s), 40)], err)
			}
		}
		return nil
	})
}

// sqlQuote escapes a string for a single-quoted SQL literal.
func sqlQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s)
}
