package backup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// bundle is a live database with seeded data and a Service backing it up.
type bundle struct {
	db       *store.DB
	dsn      string
	svc      *Service
	store    Store
	identity *age.X25519Identity
}

type setupOpts struct {
	store Store // default: a DirStore in a temp dir
	now   func() time.Time
}

func setup(t *testing.T, o setupOpts) bundle {
	t.Helper()
	db, dsn := storetest.NewDBWithDSN(t)
	st := o.store
	if st == nil {
		st = newDirStore(t)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{DB: db, DSN: dsn, Store: st, Recipients: []string{id.Recipient().String()},
		Identities: []age.Identity{id}, Version: "test", Logger: testLogger(t), Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	return bundle{db: db, dsn: dsn, svc: svc, store: st, identity: id}
}

// with returns a copy of the bundle's Service with cfg changed by fn.
func (b bundle) with(t *testing.T, fn func(*Config)) *Service {
	t.Helper()
	cfg := b.svc.cfg
	fn(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newDirStore(t *testing.T) *DirStore {
	t.Helper()
	d, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// newS3Store starts an in-process S3-compatible server (gofakes3) and
// returns a store in a bucket of it, under a prefix.
func newS3Store(t *testing.T) *S3Store {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	st, err := NewS3Store(S3Config{Endpoint: srv.URL, Bucket: "iacc-backups", Prefix: "prod/db",
		AccessKey: "test-access", SecretKey: "test-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background(), "us-east-1"); err != nil {
		t.Fatal(err)
	}
	return st
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// scratchDB names a database on the test server that is dropped at the end.
func scratchDB(t *testing.T, b bundle) string {
	t.Helper()
	name := b.db.Name() + "_r_" + randHex(3)
	t.Cleanup(func() { _ = store.DropDatabase(context.Background(), b.db, name) })
	return name
}

func mustExec(t testing.TB, q store.Querier, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", strings.SplitN(query, "\n", 2)[0], err)
	}
}

// seed fills the database with rows of every kind a backup must carry:
// iacc's own tables through the store (unicode names, JSON settings and
// audit states, DECIMAL money, DATETIME(6), NULLs), and test tables with the
// awkward cases (quotes, backslashes, NUL, Ctrl-Z, line breaks, SQL comment
// markers in strings, binary bytes 0–255, empty strings next to NULLs, BIT,
// ENUM, SET, TIME, YEAR, TIMESTAMP, unsigned extremes, generated columns, a
// table without a primary key, identifiers with backticks and semicolons, a
// 2.5 MB value, and enough rows for several multi-row INSERTs).
func seed(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	ten, err := store.CreateTenant(ctx, db, "Café Zürich 東京 😀 "+randHex(3), store.TenantSettings{AccountingEmails: []string{"buchhaltung@café.test"}})
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.Vendor(t, db, ten.ID, "Müller & Söhne 'q' \"dq\" \\ ; -- x")
	for i := 0; i < 3; i++ {
		storetest.PurchaseOrder(t, db, ten.ID, v.ID, i+2)
	}
	if _, err := store.CreateUser(ctx, db, store.User{TenantID: ten.ID, Email: "ops-" + randHex(3) + "@example.test", PasswordHash: "x", Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}

	mustExec(t, db, `CREATE TABLE backup_edge (
		id  INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		s   VARCHAR(200) NULL,
		txt LONGTEXT NULL,
		d   DECIMAL(20,6) NULL,
		f   DOUBLE NULL,
		dt  DATETIME(6) NULL,
		dt0 DATETIME NULL,
		ts  TIMESTAMP(3) NULL DEFAULT NULL,
		da  DATE NULL,
		tm  TIME(6) NULL,
		yr  YEAR NULL,
		b   BLOB NULL,
		vb  VARBINARY(16) NULL,
		bi  BINARY(4) NULL,
		bt  BIT(10) NULL,
		e   ENUM('a','b','ç') NULL,
		st  SET('x','y','z') NULL,
		j   JSON NULL,
		u   BIGINT UNSIGNED NULL,
		i   BIGINT NULL,
		g   BIGINT AS (id * 2) VIRTUAL,
		gs  VARCHAR(210) AS (CONCAT(s, '!')) STORED
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	ins := `INSERT INTO backup_edge (s, txt, d, f, dt, dt0, ts, da, tm, yr, b, vb, bi, bt, e, st, j, u, i) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	mustExec(t, db, `INSERT INTO backup_edge (id) VALUES (NULL)`) // every column NULL
	mustExec(t, db, ins, "O'Brien \"q\" back\\slash ; -- not a comment /* nor this */ # hash `tick`",
		"line1\nline2\r\n\x00nul \x1a ctrl-z 😀 東京 ñ", "-12345678901234.123456", 1.0/3.0,
		"2026-11-25 02:00:00.123456", "2026-01-01 00:00:00", "2026-06-30 23:59:59.999", "2026-02-28", "-838:59:59.000000", 2026,
		all, []byte{0, '\'', '\\', 0xff}, []byte{1, 2, 3, 4}, 682, "ç", "x,z",
		`{"a": [1, 2.5, "x"], "ü": null, "q": "it's \"q\"", "n": 1e-7}`, uint64(18446744073709551615), int64(-9223372036854775808))
	mustExec(t, db, ins, "", "", "0.000000", -1.5e300, "1970-01-01 00:00:01.000001", "9999-12-31 23:59:59", "2038-01-19 03:14:07.999",
		"1000-01-01", "00:00:00.000001", 1901, []byte{}, []byte{}, []byte{0, 0, 0, 0}, 0, "a", "", `[]`, 0, 0)
	big := strings.Repeat("große Daten – 大きいデータ – ", 2_500_000/40)
	mustExec(t, db, `INSERT INTO backup_edge (s, txt) VALUES (?, ?)`, "big", big)

	mustExec(t, db, `CREATE TABLE backup_nopk (a INT NULL, b VARCHAR(10) NULL) ENGINE=InnoDB`)
	mustExec(t, db, `INSERT INTO backup_nopk VALUES (1,'x'),(1,'x'),(NULL,'y'),(2,NULL),(2,'')`)
	mustExec(t, db, "CREATE TABLE `we``ird;name` (`id` INT NOT NULL PRIMARY KEY, `sel;ect` VARCHAR(20) NULL, `uniq` INT NOT NULL, UNIQUE KEY `u` (`uniq`)) ENGINE=InnoDB")
	mustExec(t, db, "INSERT INTO `we``ird;name` VALUES (2, 'b;', 1), (1, NULL, 2)")

	mustExec(t, db, `CREATE TABLE backup_bulk (id BIGINT NOT NULL PRIMARY KEY, n INT NOT NULL, payload VARCHAR(600) NOT NULL) ENGINE=InnoDB`)
	payload := strings.Repeat("p", 400)
	for batch := 0; batch < 6; batch++ {
		var sb strings.Builder
		sb.WriteString("INSERT INTO backup_bulk VALUES ")
		for i := 0; i < 500; i++ {
			id := batch*500 + i + 1
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,%d,'%s-%d')", id, id*7, payload, id)
		}
		mustExec(t, db, sb.String())
	}
}

// snapshot reads every base table of schema (its definition and all rows in
// column order) with code independent of the package's own.
func snapshot(t *testing.T, q store.Querier, schema string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	tables := storetest.Strings(t, q, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`, schema)
	out := map[string][]string{}
	for _, tbl := range tables {
		full := store.QuoteIdent(schema) + "." + store.QuoteIdent(tbl)
		var name, create string
		if err := q.QueryRowContext(ctx, "SHOW CREATE TABLE "+full).Scan(&name, &create); err != nil {
			t.Fatal(err)
		}
		var ncols int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, tbl).Scan(&ncols); err != nil {
			t.Fatal(err)
		}
		order := make([]string, ncols)
		for i := range order {
			order[i] = fmt.Sprint(i + 1)
		}
		rs, err := q.QueryContext(ctx, "SELECT * FROM "+full+" ORDER BY "+strings.Join(order, ","))
		if err != nil {
			t.Fatal(err)
		}
		// AUTO_INCREMENT counters are not transactional: a row inserted
		// after the snapshot moves them. Compare definitions without them.
		lines := []string{"DDL " + autoIncrement.ReplaceAllString(create, "")}
		vals := make([]any, ncols)
		ptrs := make([]any, ncols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			parts := make([]string, ncols)
			for i, v := range vals {
				switch v := v.(type) {
				case nil:
					parts[i] = "NULL"
				case []byte:
					parts[i] = fmt.Sprintf("%q", v)
				case time.Time:
					parts[i] = v.Format(time.RFC3339Nano)
				default:
					parts[i] = fmt.Sprintf("%T:%v", v, v)
				}
			}
			lines = append(lines, strings.Join(parts, " | "))
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		rs.Close()
		out[tbl] = lines
	}
	return out
}

var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=[0-9]+`)

func compareSnapshots(t *testing.T, want, got map[string][]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("tables: want %d, got %d", len(want), len(got))
	}
	for tbl, w := range want {
		g, ok := got[tbl]
		if !ok {
			t.Errorf("table %s missing", tbl)
			continue
		}
		if len(w) != len(g) {
			t.Errorf("table %s: want %d rows, got %d", tbl, len(w)-1, len(g)-1)
			continue
		}
		for i := range w {
			if w[i] != g[i] {
				t.Errorf("table %s line %d differs:\nwant %.400s\ngot  %.400s", tbl, i, w[i], g[i])
				break
			}
		}
	}
}

// changeData changes every kind of thing a restore must undo.
func changeData(t *testing.T, db *store.DB) {
	t.Helper()
	mustExec(t, db, `UPDATE vendors SET name = CONCAT(name, ' (changed)'), balance = balance + 1`)
	mustExec(t, db, `DELETE FROM backup_bulk WHERE id % 3 = 0`)
	mustExec(t, db, `UPDATE backup_edge SET txt = NULL, b = X'00' WHERE id = 2`)
	mustExec(t, db, `INSERT INTO backup_nopk VALUES (99, 'new')`)
	mustExec(t, db, `CREATE TABLE backup_new (id INT PRIMARY KEY)`)
}

func TestRoundTripDir(t *testing.T) {
	t.Parallel()
	testRoundTrip(t, setup(t, setupOpts{}), true)
}

func TestRoundTripS3(t *testing.T) {
	t.Parallel()
	testRoundTrip(t, setup(t, setupOpts{store: newS3Store(t)}), false)
}

// A backup restored into a scratch database equals the seeded state table by
// table, after the live data changed; verification passes and records
// itself; a restore refuses a non-empty database and the live one unless
// forced.
//
// full adds the store-independent checks (forced restore, refusals), run
// with one store only to keep the package fast.
func testRoundTrip(t *testing.T, b bundle, full bool) {
	ctx := context.Background()
	seed(t, b.db)
	want := snapshot(t, b.db, b.db.Name())

	m, err := b.svc.Run(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"goose_db_version", "tenants", "purchase_orders", "backup_edge", "backup_nopk", "we`ird;name", "backup_bulk"} {
		if _, ok := m.Tables[tbl]; !ok {
			t.Errorf("manifest lacks table %s", tbl)
		}
	}
	if len(m.Tables) != len(want) {
		t.Errorf("manifest has %d tables, the database %d", len(m.Tables), len(want))
	}
	for tbl, lines := range want {
		if got := m.Tables[tbl].Rows; got != int64(len(lines)-1) {
			t.Errorf("manifest: table %s has %d rows, want %d", tbl, got, len(lines)-1)
		}
	}
	if m.Bytes <= 0 || len(m.SHA256) != 64 || m.SQLBytes < 3_000_000 || m.Recipients[0] != b.identity.Recipient().String() ||
		m.File != DataName(m.ID) || m.Format != FormatVersion || m.Database != b.db.Name() {
		t.Errorf("manifest = %+v", m)
	}
	list, err := b.svc.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != m.ID || !reflect.DeepEqual(list[0].Tables, m.Tables) {
		t.Fatalf("list = %+v, %v", list, err)
	}
	run, err := store.LastBackupRun(ctx, b.db, store.BackupKindBackup, store.BackupSucceeded)
	if err != nil || run.BackupID != m.ID || run.Bytes != m.Bytes {
		t.Errorf("recorded run = %+v, %v", run, err)
	}

	changeData(t, b.db)

	into := scratchDB(t, b)
	res, err := b.svc.Restore(ctx, RestoreOptions{ID: m.ID, Into: into})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tables != len(want) || res.Rows != m.Rows() || res.Statements < len(want)*2+5 {
		t.Errorf("restore result = %+v", res)
	}
	compareSnapshots(t, want, snapshot(t, b.db, into))

	if _, err := b.svc.Restore(ctx, RestoreOptions{ID: m.ID, Into: into}); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore into a non-empty database: %v", err)
	}
	if _, err := b.svc.Restore(ctx, RestoreOptions{ID: m.ID, Into: b.db.Name()}); err == nil || !strings.Contains(err.Error(), "live database") {
		t.Errorf("restore over the live database without --force: %v", err)
	}
	if full {
		mustExec(t, b.db, "CREATE TABLE "+store.QuoteIdent(into)+".extra (id INT)")
		if _, err := b.svc.Restore(ctx, RestoreOptions{ID: m.ID, Into: into, Force: true}); err != nil {
			t.Fatalf("forced restore: %v", err)
		}
		compareSnapshots(t, want, snapshot(t, b.db, into))
	}

	vres, err := b.svc.Verify(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if vres.BackupID != m.ID || vres.Rows != m.Rows() {
		t.Errorf("verify result = %+v", vres)
	}
	left, _ := store.ListDatabasesWithPrefix(ctx, b.db, b.svc.scratchPrefix())
	if len(left) != 0 {
		t.Errorf("scratch databases left behind: %v", left)
	}
	vrun, err := store.LastBackupRun(ctx, b.db, store.BackupKindVerify)
	if err != nil || vrun.State != store.BackupSucceeded || vrun.BackupID != m.ID {
		t.Errorf("recorded verification = %+v, %v", vrun, err)
	}

	// A second run for the same time is the same backup.
	again, err := b.svc.Run(ctx, m.StartedAt)
	if err != nil || again.SHA256 != m.SHA256 {
		t.Errorf("second run at the same time: %+v, %v", again, err)
	}
	runs, _ := store.ListBackupRuns(ctx, b.db, store.BackupKindBackup, 10)
	if len(runs) != 1 {
		t.Errorf("recorded %d backup runs, want 1", len(runs))
	}
}

// Rows committed after the dump's snapshot was taken are not in the backup:
// every table is read at one instant.
func TestDumpIsOneSnapshot(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	ten := storetest.Tenant(t, b.db, "acme")
	v := storetest.Vendor(t, b.db, ten.ID, "Globex")
	storetest.PurchaseOrder(t, b.db, ten.ID, v.ID, 2)
	want := snapshot(t, b.db, b.db.Name())
	b.svc.afterSnapshot = func(context.Context) error {
		// Another connection commits while the dump runs.
		storetest.PurchaseOrder(t, b.db, ten.ID, v.ID, 3)
		mustExec(t, b.db, `UPDATE vendors SET name = 'Renamed'`)
		return nil
	}
	m, err := b.svc.Run(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Tables["purchase_orders"].Rows != 1 || m.Tables["purchase_order_items"].Rows != 2 {
		t.Errorf("manifest counts rows committed after the snapshot: %+v", m.Tables)
	}
	into := scratchDB(t, b)
	if _, err := b.svc.Restore(ctx, RestoreOptions{ID: m.ID, Into: into}); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, want, snapshot(t, b.db, into))
}

func tamper(t *testing.T, st Store, name string, fn func([]byte) []byte) {
	t.Helper()
	rc, err := st.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), name, strings.NewReader(string(fn(data)))); err != nil {
		t.Fatal(err)
	}
}

func editManifest(t *testing.T, st Store, id string, fn func(*Manifest)) {
	t.Helper()
	tamper(t, st, ManifestName(id), func(b []byte) []byte {
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		fn(&m)
		out, _ := json.Marshal(m)
		return out
	})
}

func TestTamperedBackupFailsVerificationDir(t *testing.T) {
	t.Parallel()
	testTampered(t, setup(t, setupOpts{}), true)
}

func TestTamperedBackupFailsVerificationS3(t *testing.T) {
	t.Parallel()
	testTampered(t, setup(t, setupOpts{store: newS3Store(t)}), false)
}

// A changed backup file fails verification with a clear message, whether
// only the file changed (SHA-256) or the manifest was changed to match it
// (age's authentication); so does data differing from the manifest. Each
// failure is recorded; nothing is restored. full adds the truncated-file and
// checksum-mismatch cases (store-independent).
func testTampered(t *testing.T, b bundle, full bool) {
	ctx := context.Background()
	ten := storetest.Tenant(t, b.db, "acme")
	storetest.Vendor(t, b.db, ten.ID, "Globex")
	m, err := b.svc.Run(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	original := readAll(t, b.store, m.File)
	flip := func(d []byte) []byte {
		d = slices.Clone(d)
		d[len(d)/2] ^= 0x40
		return d
	}

	tamper(t, b.store, m.File, flip)
	_, err = b.svc.Verify(ctx, m.ID)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "does not match its manifest") || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("verify of a changed file: %v", err)
	}
	into := scratchDB(t, b)
	if _, err := b.svc.Restore(ctx, RestoreOptions{ID: m.ID, Into: into}); !errors.Is(err, ErrTampered) {
		t.Errorf("restore of a changed file: %v", err)
	}
	if n, _ := store.CountTables(ctx, b.db, into); n != 0 {
		t.Errorf("a changed file was partly restored: %d tables", n)
	}

	// The manifest rewritten to match the changed file: age's MAC catches it.
	sum, size := sha256Hex(flip(original)), int64(len(original))
	editManifest(t, b.store, m.ID, func(m *Manifest) { m.SHA256, m.Bytes = sum, size })
	_, err = b.svc.Verify(ctx, m.ID)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "decrypt") {
		t.Errorf("verify of a changed file with a matching manifest: %v", err)
	}

	if !full {
		return
	}
	// A truncated file.
	tamper(t, b.store, m.File, func([]byte) []byte { return original[:len(original)-20] })
	editManifest(t, b.store, m.ID, func(mm *Manifest) {
		mm.SHA256, mm.Bytes = sha256Hex(original[:len(original)-20]), int64(len(original)-20)
	})
	if _, err := b.svc.Verify(ctx, m.ID); !errors.Is(err, ErrTampered) {
		t.Errorf("verify of a truncated file: %v", err)
	}

	// The file intact, a table's checksum in the manifest wrong.
	tamper(t, b.store, m.File, func([]byte) []byte { return original })
	editManifest(t, b.store, m.ID, func(mm *Manifest) {
		mm.SHA256, mm.Bytes = m.SHA256, m.Bytes
		v := mm.Tables["vendors"]
		v.Checksum = strings.Repeat("0", 64)
		mm.Tables["vendors"] = v
	})
	_, err = b.svc.Verify(ctx, m.ID)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "table vendors has checksum") {
		t.Errorf("verify with a wrong table checksum: %v", err)
	}
	left, _ := store.ListDatabasesWithPrefix(ctx, b.db, b.svc.scratchPrefix())
	if len(left) != 0 {
		t.Errorf("scratch databases left behind: %v", left)
	}
	last, err := store.LastBackupRun(ctx, b.db, store.BackupKindVerify)
	if err != nil || last.State != store.BackupFailed || !strings.Contains(last.Error, "differs from the manifest") {
		t.Errorf("last verification recorded = %+v, %v", last, err)
	}
}

func readAll(t *testing.T, st Store, name string) []byte {
	t.Helper()
	rc, err := st.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// The wrong age identity, or none, fails cleanly before anything is read or
// written; a missing backup is named.
func TestWrongIdentityFailsCleanly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	m, err := b.svc.Run(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	wrong := b.with(t, func(c *Config) { c.Identities = []age.Identity{other} })
	_, err = wrong.Verify(ctx, m.ID)
	if !errors.Is(err, ErrWrongIdentity) || !strings.Contains(err.Error(), b.identity.Recipient().String()) {
		t.Errorf("verify with the wrong identity: %v", err)
	}
	into := scratchDB(t, b)
	if _, err := wrong.Restore(ctx, RestoreOptions{ID: m.ID, Into: into}); !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("restore with the wrong identity: %v", err)
	}
	if ok, _ := store.DatabaseExists(ctx, b.db, into); ok {
		t.Error("restore with the wrong identity created the target database")
	}
	none := b.with(t, func(c *Config) { c.Identities = nil })
	if _, err := none.Verify(ctx, m.ID); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("verify without identity: %v", err)
	}
	if _, err := b.svc.Verify(ctx, "20200101T000000Z"); !errors.Is(err, ErrNotFound) {
		t.Errorf("verify of a missing backup: %v", err)
	}
	if _, err := b.svc.Verify(ctx, "../etc"); err == nil || !strings.Contains(err.Error(), "invalid backup id") {
		t.Errorf("verify of a bad id: %v", err)
	}
	noKey := b.with(t, func(c *Config) { c.Recipients = nil })
	if _, err := noKey.Run(ctx, time.Now().Add(time.Hour)); !errors.Is(err, ErrNoRecipient) {
		t.Errorf("run without recipient: %v", err)
	}
}

// Only one backup of a database runs at a time.
func TestConcurrentBackupIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	conn, err := b.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := getLock(ctx, conn, lockName("backup", b.db.Name())); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Run(ctx, time.Time{}); !errors.Is(err, ErrBusy) {
		t.Errorf("run while another holds the lock: %v", err)
	}
	last, err := store.LastBackupRun(ctx, b.db, store.BackupKindBackup)
	if err != nil || last.State != store.BackupFailed {
		t.Errorf("failed run recorded as %+v, %v", last, err)
	}
	if names, _ := b.store.List(ctx); len(names) != 0 {
		t.Errorf("a failed run left %v", names)
	}
	if _, err := conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", lockName("backup", b.db.Name())); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Run(ctx, time.Time{}); err != nil {
		t.Errorf("run after the lock was released: %v", err)
	}
}

// The data file name must not escape the store.
func TestStoreNames(t *testing.T) {
	t.Parallel()
	d := newDirStore(t)
	for _, n := range []string{"", "../x", "a/b", `a\b`, ".hidden"} {
		if _, err := d.Put(context.Background(), n, strings.NewReader("x")); err == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	if _, err := d.Open(context.Background(), "20200101T000000Z.manifest.json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("open missing: %v", err)
	}
	if err := os.WriteFile(filepath.Join(d.Root(), ".tmp-123"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if names, _ := d.List(context.Background()); len(names) != 0 {
		t.Errorf("temporary files listed: %v", names)
	}
}
