package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"filippo.io/age"
	"github.com/hibiken/asynq"
	"github.com/klauspost/compress/gzip"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
)

// Errors of a backup run.
var (
	// ErrNoRecipient: backups cannot be written without an age recipient.
	ErrNoRecipient = errors.New("no age recipient configured: set IACC_BACKUP_AGE_RECIPIENT to a public key (age1…) to enable backups")
	// ErrBusy: another backup (or verification) of the database is running.
	ErrBusy = errors.New("another run holds the backup lock of this database")
)

// Config is what a Service needs.
type Config struct {
	// DB is the live database: the one backed up, and where runs are
	// recorded in backup_runs.
	DB *store.DB
	// DSN is DB's DSN. Restores and verifications open other databases on
	// the same server with the same credentials.
	DSN string
	// Store keeps the backups.
	Store Store
	// Recipients are the age public keys (age1…) backups are encrypted to.
	// Without one, Run fails with ErrNoRecipient.
	Recipients []string
	// Identities decrypt backups (restore and verify only).
	Identities []age.Identity
	// KeepDays is how many days with backups are kept (30).
	KeepDays int
	// OverdueAfter raises the missing-backup alert when no backup has
	// succeeded for this long (26 h).
	OverdueAfter time.Duration
	// OpsEmail receives alert emails, sent through Queue. Empty: alerts
	// are logged and exported as metrics only.
	OpsEmail string
	Queue    *asynq.Client
	// Metrics counts finished runs (iacc_backup_runs_total); nil: not counted.
	Metrics *metrics.Set
	// Version is iacc's version, written into manifests.
	Version string
	Logger  *slog.Logger
	// Now replaces the clock (tests).
	Now func() time.Time
}

// Service writes, lists, verifies, restores and prunes backups.
type Service struct {
	cfg        Config
	recipients []age.Recipient
	log        *slog.Logger

	// afterSnapshot runs once the dump's snapshot is taken (tests).
	afterSnapshot func(ctx context.Context) error
}

// New checks cfg and returns a Service. It contacts nothing.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Store == nil || cfg.DSN == "" {
		return nil, errors.New("backup: DB, DSN and Store are required")
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	if len(cfg.Recipients) > 0 {
		rs, texts, err := ParseRecipients(joinLines(cfg.Recipients))
		if err != nil {
			return nil, err
		}
		s.recipients, s.cfg.Recipients = rs, texts
	}
	if s.cfg.KeepDays <= 0 {
		s.cfg.KeepDays = 30
	}
	if s.cfg.OverdueAfter <= 0 {
		s.cfg.OverdueAfter = 26 * time.Hour
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "backup")
	return s, nil
}

func joinLines(ss []string) string {
	var b bytes.Buffer
	for _, s := range ss {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// count adds a finished run to iacc_backup_runs_total.
func (s *Service) count(kind, result string) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Backups.WithLabelValues(kind, result).Inc()
	}
}

// Store is where the backups are kept.
func (s *Service) Store() Store { return s.cfg.Store }

// Run writes a backup of the live database taken at the time at (now when
// zero), records the run, and prunes old backups. The backup's id is made
// from at, so a second Run for the same time returns the existing backup's
// manifest without writing anything.
//
// The dump streams through gzip and age into the store: memory use does not
// grow with the database. The manifest gives the duration and sizes.
func (s *Service) Run(ctx context.Context, at time.Time) (Manifest, error) {
	start := s.now()
	if at.IsZero() {
		at = start
	}
	id := NewID(at)
	if m, err := s.Manifest(ctx, id); err == nil {
		s.log.Info("backup already written", "backup_id", id)
		return m, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Manifest{}, err
	}
	if _, err := store.AbandonBackupRuns(ctx, s.cfg.DB, store.BackupKindBackup, start.Add(-24*time.Hour), start); err != nil {
		return Manifest{}, err
	}
	// The run is recorded once the snapshot is taken, so that the backup
	// does not hold its own run in the 'running' state.
	var runID int64
	started := func() error {
		var err error
		runID, err = store.StartBackupRun(ctx, s.cfg.DB, store.BackupKindBackup, id, start)
		return err
	}
	s.log.Info("backup started", "backup_id", id, "store", s.cfg.Store.String())
	var m Manifest
	var err error
	if len(s.recipients) == 0 {
		err = ErrNoRecipient
	} else {
		m, err = s.write(ctx, id, start, started)
	}
	fin := s.now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		err = fmt.Errorf("backup %s: %w", id, err)
		ferr := error(nil)
		if runID == 0 {
			runID, ferr = store.StartBackupRun(rctx, s.cfg.DB, store.BackupKindBackup, id, start)
		}
		if ferr == nil {
			ferr = store.FinishBackupRun(rctx, s.cfg.DB, runID, store.BackupFailed, 0, fin.Sub(start), err.Error(), fin)
		}
		if ferr != nil {
			s.log.Error("record failed backup", "backup_id", id, "err", ferr)
		}
		s.log.Error("backup failed", "backup_id", id, "err", err)
		s.count(store.BackupKindBackup, store.BackupFailed)
		return Manifest{}, err
	}
	s.count(store.BackupKindBackup, store.BackupSucceeded)
	if err := store.FinishBackupRun(rctx, s.cfg.DB, runID, store.BackupSucceeded, m.Bytes, m.Duration(), "", fin); err != nil {
		return m, fmt.Errorf("backup %s written, but recording it failed: %w", id, err)
	}
	s.log.Info("backup written", "backup_id", id, "bytes", m.Bytes, "sql_bytes", m.SQLBytes, "tables", len(m.Tables),
		"rows", m.Rows(), "duration_ms", m.DurationMS)
	if deleted, err := s.Prune(ctx); err != nil {
		// The backup is good; a failed prune is retried after the next one.
		s.log.Error("prune old backups", "err", err)
	} else if len(deleted) > 0 {
		s.log.Info("pruned old backups", "deleted", deleted)
	}
	return m, nil
}

// write dumps, compresses, encrypts and uploads the backup, then its
// manifest. started runs once the snapshot is taken.
func (s *Service) write(ctx context.Context, id string, start time.Time, started func() error) (Manifest, error) {
	conn, err := s.cfg.DB.Conn(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("connect: %w", err)
	}
	// The session's settings (lock, timeouts) go with it: it is discarded,
	// never handed back to the pool.
	defer func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
	}()
	if err := getLock(ctx, conn, lockName("backup", s.cfg.DB.Name())); err != nil {
		return Manifest{}, err
	}
	defer releaseLock(ctx, conn, lockName("backup", s.cfg.DB.Name()))
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return Manifest{}, fmt.Errorf("read server version: %w", err)
	}
	for _, q := range []string{
		// The dump is read as fast as the store takes it; a slow upload
		// must not make the server give up on the connection.
		"SET SESSION net_write_timeout = 3600",
		"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return Manifest{}, fmt.Errorf("start snapshot (%s): %w", q, err)
		}
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	if err := started(); err != nil {
		return Manifest{}, err
	}
	if s.afterSnapshot != nil {
		if err := s.afterSnapshot(ctx); err != nil {
			return Manifest{}, err
		}
	}

	type dumped struct {
		sums     map[string]TableSum
		sqlBytes int64
		err      error
	}
	pr, pw := io.Pipe()
	fileHash := sha256.New()
	toStore := &countingWriter{w: pw}
	done := make(chan dumped, 1)
	go func() {
		var d dumped
		d.sums, d.sqlBytes, d.err = s.encode(ctx, conn, io.MultiWriter(fileHash, toStore), dumpHeader{ID: id, Database: s.cfg.DB.Name(), ServerVersion: version})
		pw.CloseWithError(d.err) // nil: the store reads io.EOF
		done <- d
	}()
	n, putErr := s.cfg.Store.Put(ctx, DataName(id), pr)
	if putErr != nil {
		pr.CloseWithError(putErr) // stops the dump if the store gave up first
	}
	d := <-done
	if err := errors.Join(d.err, putErr); err != nil {
		s.discard(ctx, DataName(id))
		if d.err != nil && putErr != nil {
			err = d.err // the store only saw the dump's failure
		}
		return Manifest{}, err
	}
	if n != toStore.n {
		s.discard(ctx, DataName(id))
		return Manifest{}, fmt.Errorf("store %s took %d bytes of %d", s.cfg.Store, n, toStore.n)
	}
	fin := s.now()
	m := Manifest{
		Format: FormatVersion, ID: id, File: DataName(id), Database: s.cfg.DB.Name(), ServerVersion: version,
		IACCVersion: s.cfg.Version, StartedAt: start, FinishedAt: fin, DurationMS: fin.Sub(start).Milliseconds(),
		Bytes: n, SHA256: hex.EncodeToString(fileHash.Sum(nil)), SQLBytes: d.sqlBytes,
		Compression: "gzip", Encryption: "age", Recipients: slices.Clone(s.cfg.Recipients), Tables: d.sums,
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("encode manifest: %w", err)
	}
	if _, err := s.cfg.Store.Put(ctx, ManifestName(id), bytes.NewReader(append(b, '\n'))); err != nil {
		s.discard(ctx, DataName(id))
		return Manifest{}, fmt.Errorf("write manifest: %w", err)
	}
	return m, nil
}

// encode writes the dump through gzip and age into w and returns the table
// sums and the size of the SQL.
func (s *Service) encode(ctx context.Context, conn *sql.Conn, w io.Writer, hdr dumpHeader) (map[string]TableSum, int64, error) {
	aw, err := age.Encrypt(w, s.recipients...)
	if err != nil {
		return nil, 0, fmt.Errorf("encrypt: %w", err)
	}
	zw, err := gzip.NewWriterLevel(aw, gzip.DefaultCompression)
	if err != nil {
		return nil, 0, fmt.Errorf("compress: %w", err)
	}
	cw := &countingWriter{w: zw}
	bw := bufio.NewWriterSize(cw, 256<<10)
	sums, err := dump(ctx, conn, bw, hdr)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = aw.Close()
	}
	return sums, cw.n, err
}

// discard deletes what a failed run may have left.
func (s *Service) discard(ctx context.Context, name string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.cfg.Store.Delete(dctx, name); err != nil {
		s.log.Warn("delete unfinished backup object", "name", name, "err", err)
	}
}

// lockName is the server-wide named lock of a kind of run on a database.
func lockName(kind, db string) string {
	sum := sha256.Sum256([]byte(db))
	return "iacc-" + kind + "-" + hex.EncodeToString(sum[:12])
}

// getLock takes a named lock on conn without waiting.
func getLock(ctx context.Context, conn *sql.Conn, name string) error {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got); err != nil {
		return fmt.Errorf("take lock %s: %w", name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		return ErrBusy
	}
	return nil
}

// releaseLock gives a lock back before its session is discarded: the server
// would release it only once it has processed the disconnect, and a run
// right after this one must find it free.
func releaseLock(ctx context.Context, conn *sql.Conn, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = conn.ExecContext(rctx, "DO RELEASE_LOCK(?)", name) // failing, the disconnect releases it
}

// Manifest reads the manifest of backup id; a missing one is a wrapped
// ErrNotFound.
func (s *Service) Manifest(ctx context.Context, id string) (Manifest, error) {
	if _, err := ParseID(id); err != nil {
		return Manifest{}, err
	}
	rc, err := s.cfg.Store.Open(ctx, ManifestName(id))
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest of %s: %w", id, err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s: %w", id, err)
	}
	if m.ID != id || m.File != DataName(id) {
		return Manifest{}, fmt.Errorf("backup %s: the manifest names backup %s (file %s)", id, m.ID, m.File)
	}
	return m, nil
}

// List returns the manifests of the stored backups, newest first. Backup
// files without a manifest (unfinished runs) are not listed.
func (s *Service) List(ctx context.Context) ([]Manifest, error) {
	ids, err := s.manifestIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, 0, len(ids))
	for _, id := range ids {
		m, err := s.Manifest(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// manifestIDs lists the ids that have a manifest, newest first.
func (s *Service) manifestIDs(ctx context.Context) ([]string, error) {
	names, err := s.cfg.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range names {
		if id, isManifest, ok := splitName(n); ok && isManifest {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids, nil
}

// manifestOrLatest reads backup id's manifest, or the latest one when id is
// empty.
func (s *Service) manifestOrLatest(ctx context.Context, id string) (Manifest, error) {
	if id != "" {
		return s.Manifest(ctx, id)
	}
	ids, err := s.manifestIDs(ctx)
	if err != nil {
		return Manifest{}, err
	}
	if len(ids) == 0 {
		return Manifest{}, fmt.Errorf("no backups in %s: %w", s.cfg.Store, ErrNotFound)
	}
	return s.Manifest(ctx, ids[0])
}
