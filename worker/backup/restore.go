package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"

	"github.com/iacc/iacc/store"
)

// Errors a restore or verification reports (wrapped, with details).
var (
	// ErrTampered: the stored file does not match its manifest, or fails
	// age's authentication: it was changed or corrupted.
	ErrTampered = errors.New("backup file does not match its manifest (changed or corrupted)")
	// ErrWrongIdentity: none of the configured age identities can decrypt
	// the backup.
	ErrWrongIdentity = errors.New("the age identity cannot decrypt this backup")
	// ErrNoIdentity: no age identity is configured.
	ErrNoIdentity = errors.New("no age identity configured (IACC_BACKUP_AGE_IDENTITY or IACC_BACKUP_AGE_IDENTITY_FILE)")
	// ErrMismatch: the restored data differs from the manifest.
	ErrMismatch = errors.New("restored data differs from the manifest")
	// ErrNotEmpty: the target database of a restore holds tables.
	ErrNotEmpty = errors.New("target database is not empty")
)

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	ID   string // backup id; empty: the latest
	Into string // database to restore into, on the server of Config.DSN
	// Force drops and recreates Into when it holds tables (and allows
	// restoring over the live database).
	Force bool
}

// Result is the outcome of a restore or verification.
type Result struct {
	BackupID   string
	Database   string // where the backup was restored
	Tables     int
	Rows       int64
	Statements int
	Duration   time.Duration
}

// Restore restores a backup into the database opts.Into and checks every
// table against the manifest. Into must be empty (or absent) unless
// opts.Force. The file's SHA-256 is checked before anything is written.
func (s *Service) Restore(ctx context.Context, opts RestoreOptions) (Result, error) {
	if opts.Into == "" {
		return Result{}, errors.New("restore: no target database given")
	}
	m, err := s.manifestOrLatest(ctx, opts.ID)
	if err != nil {
		return Result{}, err
	}
	if opts.Into == s.cfg.DB.Name() && !opts.Force {
		return Result{}, fmt.Errorf("restore into %s: that is the live database; pass --force to overwrite it", opts.Into)
	}
	if err := s.checkFile(ctx, m); err != nil {
		return Result{}, err
	}
	n, err := store.CountTables(ctx, s.cfg.DB, opts.Into)
	if err != nil {
		return Result{}, err
	}
	if n > 0 && !opts.Force {
		return Result{}, fmt.Errorf("restore into %s: %w (%d tables); pass --force to replace its tables", opts.Into, ErrNotEmpty, n)
	}
	exists, err := store.DatabaseExists(ctx, s.cfg.DB, opts.Into)
	if err != nil {
		return Result{}, err
	}
	if !exists {
		if err := store.CreateDatabase(ctx, s.cfg.DB, opts.Into); err != nil {
			return Result{}, err
		}
	}
	return s.restoreInto(ctx, m, opts.Into, n > 0)
}

// checkFile checks that the identity can open the backup (reading only its
// header) and that the stored file has the manifest's size and SHA-256.
func (s *Service) checkFile(ctx context.Context, m Manifest) error {
	if len(s.cfg.Identities) == 0 {
		return ErrNoIdentity
	}
	rc, err := s.cfg.Store.Open(ctx, m.File)
	if err != nil {
		return fmt.Errorf("backup %s: %w", m.ID, err)
	}
	_, err = age.Decrypt(rc, s.cfg.Identities...)
	rc.Close()
	if err != nil {
		return s.decryptError(m, err)
	}
	rc, err = s.cfg.Store.Open(ctx, m.File)
	if err != nil {
		return fmt.Errorf("backup %s: %w", m.ID, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("backup %s: read %s: %w", m.ID, m.File, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 || n != m.Bytes {
		return fmt.Errorf("backup %s: %w: %s has %d bytes with SHA-256 %s, the manifest says %d bytes with SHA-256 %s",
			m.ID, ErrTampered, m.File, n, sum, m.Bytes, m.SHA256)
	}
	return nil
}

func (s *Service) decryptError(m Manifest, err error) error {
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return fmt.Errorf("backup %s: %w: it is encrypted to %s", m.ID, ErrWrongIdentity, strings.Join(m.Recipients, ", "))
	}
	return fmt.Errorf("backup %s: %w: decrypt: %v", m.ID, ErrTampered, err)
}

// restoreInto decrypts, decompresses and executes the backup into the
// existing database target, then compares it with the manifest. With clear,
// the target's tables and views are dropped first (the database itself is
// kept, so that sessions using it stay valid).
func (s *Service) restoreInto(ctx context.Context, m Manifest, target string, clear bool) (Result, error) {
	start := s.now()
	dsn, err := store.DSNForDatabase(s.cfg.DSN, target)
	if err != nil {
		return Result{}, err
	}
	db, err := store.Open(dsn, store.Options{MaxOpenConns: 1})
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("connect to %s: %w", target, err)
	}
	defer conn.Close()
	if clear {
		if err := dropAll(ctx, conn); err != nil {
			return Result{}, fmt.Errorf("clear %s: %w", target, err)
		}
	}

	rc, err := s.cfg.Store.Open(ctx, m.File)
	if err != nil {
		return Result{}, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	defer rc.Close()
	fileHash := sha256.New()
	src := io.TeeReader(rc, fileHash)
	plain, err := age.Decrypt(src, s.cfg.Identities...)
	if err != nil {
		return Result{}, s.decryptError(m, err)
	}
	dec := &errRecorder{r: plain}
	zr, err := gzip.NewReader(dec)
	if err != nil {
		return Result{}, s.streamError(m, rc, fileHash, dec, fmt.Errorf("gunzip: %w", err))
	}
	defer zr.Close()
	stmts := 0
	sr := newStatementReader(zr)
	for {
		stmt, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, s.streamError(m, rc, fileHash, dec, err)
		}
		if _, err := conn.ExecContext(ctx, string(stmt)); err != nil {
			return Result{}, fmt.Errorf("backup %s: restore into %s: statement %d (%s): %w", m.ID, target, stmts+1, describeStatement(stmt), err)
		}
		stmts++
	}
	// age authenticates each chunk (and the end of the stream) and gzip
	// checks its CRC at the end: a stream read to its end is the stream
	// that was written.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return Result{}, fmt.Errorf("backup %s: read %s: %w", m.ID, m.File, err)
	}
	if sum := hex.EncodeToString(fileHash.Sum(nil)); sum != m.SHA256 {
		return Result{}, fmt.Errorf("backup %s: %w: SHA-256 of %s is %s, the manifest says %s", m.ID, ErrTampered, m.File, sum, m.SHA256)
	}
	sums, err := tableSums(ctx, conn)
	if err != nil {
		return Result{}, fmt.Errorf("backup %s: checksum restored tables in %s: %w", m.ID, target, err)
	}
	if err := compareSums(m.Tables, sums); err != nil {
		return Result{}, fmt.Errorf("backup %s restored into %s: %w", m.ID, target, err)
	}
	return Result{BackupID: m.ID, Database: target, Tables: len(sums), Rows: m.Rows(), Statements: stmts, Duration: s.now().Sub(start)}, nil
}

// dropAll drops every table and view of the connection's database.
func dropAll(ctx context.Context, conn store.Querier) error {
	rows, err := conn.QueryContext(ctx, `SELECT CONCAT(IF(TABLE_TYPE = 'VIEW', 'DROP VIEW ', 'DROP TABLE '), '`+"`"+`', REPLACE(TABLE_NAME, '`+"`"+`', '`+"``"+`'), '`+"`"+`')
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`)
	if err != nil {
		return err
	}
	stmts, err := scanStrings(rows)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "SET FOREIGN_KEY_CHECKS=0"); err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := conn.ExecContext(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// errRecorder remembers the error of the reader it wraps (the decrypting
// reader: its errors mean the file failed authentication).
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// streamError explains a failure while reading the backup stream. A file
// that no longer matches its manifest (read to its end to find out), or
// whose decryption failed age's authentication, was changed or corrupted.
func (s *Service) streamError(m Manifest, rc io.Reader, h hash.Hash, dec *errRecorder, err error) error {
	if _, cerr := io.Copy(h, rc); cerr == nil && hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		return fmt.Errorf("backup %s: %w: %v", m.ID, ErrTampered, err)
	}
	if dec.err != nil {
		return fmt.Errorf("backup %s: %w: decrypt: %v", m.ID, ErrTampered, dec.err)
	}
	return fmt.Errorf("backup %s: the decrypted dump is corrupt: %w", m.ID, err)
}

// describeStatement names a statement for an error message without
// repeating its data: its first line, cut short.
func describeStatement(stmt []byte) string {
	s := strings.TrimSpace(string(stmt))
	for strings.HasPrefix(s, "--") {
		_, rest, ok := strings.Cut(s, "\n")
		if !ok {
			break
		}
		s = strings.TrimSpace(rest)
	}
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.Index(s, " VALUES"); i >= 0 {
		s = s[:i] + " VALUES …"
	}
	if len(s) > 120 {
		s = strings.ToValidUTF8(s[:120], "") + "…"
	}
	return s
}

// compareSums reports every table whose rows or checksum differ, and tables
// present on one side only.
func compareSums(want, got map[string]TableSum) error {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("table %s is missing", name))
		case g.Rows != w.Rows:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows, the manifest says %d", name, g.Rows, w.Rows))
		case g.Checksum != w.Checksum:
			diffs = append(diffs, fmt.Sprintf("table %s has checksum %s, the manifest says %s", name, short(g.Checksum), short(w.Checksum)))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("table %s is not in the manifest", name))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(diffs, "; "))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
