package backup

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/iacc/iacc/store"
)

// Verify restores backup id (the latest when empty) into a scratch database
// on the live database's server, compares every table's row count and
// checksum with the manifest, drops the scratch database and records the
// result in backup_runs. The file's size and SHA-256 are checked too.
//
// The scratch database is named <live database>_verify_<random>; the
// database user needs the right to create and drop such databases.
// Leftovers of an interrupted verification are dropped first.
func (s *Service) Verify(ctx context.Context, id string) (Result, error) {
	if id != "" {
		if _, err := ParseID(id); err != nil {
			return Result{}, err
		}
	}
	start := s.now()
	if _, err := store.AbandonBackupRuns(ctx, s.cfg.DB, store.BackupKindVerify, start.Add(-24*time.Hour), start); err != nil {
		return Result{}, err
	}
	m, err := s.manifestOrLatest(ctx, id)
	backupID := id
	if err == nil {
		backupID = m.ID
	}
	runID, rerr := store.StartBackupRun(ctx, s.cfg.DB, store.BackupKindVerify, backupID, start)
	if rerr != nil {
		return Result{}, rerr
	}
	var res Result
	if err == nil {
		res, err = s.verify(ctx, m)
	}
	fin := s.now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		err = fmt.Errorf("verify: %w", err)
		if ferr := store.FinishBackupRun(rctx, s.cfg.DB, runID, store.BackupFailed, m.Bytes, fin.Sub(start), err.Error(), fin); ferr != nil {
			s.log.Error("record failed verification", "backup_id", backupID, "err", ferr)
		}
		s.log.Error("backup verification failed", "backup_id", backupID, "err", err)
		s.count(store.BackupKindVerify, store.BackupFailed)
		return Result{}, err
	}
	s.count(store.BackupKindVerify, store.BackupSucceeded)
	res.Duration = fin.Sub(start)
	if err := store.FinishBackupRun(rctx, s.cfg.DB, runID, store.BackupSucceeded, m.Bytes, res.Duration, "", fin); err != nil {
		return res, fmt.Errorf("backup %s verified, but recording it failed: %w", m.ID, err)
	}
	s.log.Info("backup verified", "backup_id", m.ID, "tables", res.Tables, "rows", res.Rows, "duration_ms", res.Duration.Milliseconds())
	return res, nil
}

// scratchPrefix names the scratch databases of verifications of the live
// database.
func (s *Service) scratchPrefix() string {
	name := s.cfg.DB.Name()
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "_verify_"
}

func (s *Service) verify(ctx context.Context, m Manifest) (Result, error) {
	conn, err := s.cfg.DB.Conn(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // releases the lock with the session
		_ = conn.Close()
	}()
	if err := getLock(ctx, conn, lockName("verify", s.cfg.DB.Name())); err != nil {
		return Result{}, err
	}
	defer releaseLock(ctx, conn, lockName("verify", s.cfg.DB.Name()))
	// Holding the lock, no other verification of this database runs: any
	// scratch database is a leftover of one that was interrupted.
	left, err := store.ListDatabasesWithPrefix(ctx, conn, s.scratchPrefix())
	if err != nil {
		return Result{}, err
	}
	for _, name := range left {
		s.log.Warn("dropping the scratch database of an interrupted verification", "database", name)
		if err := store.DropDatabase(ctx, conn, name); err != nil {
			return Result{}, err
		}
	}
	if err := s.checkFile(ctx, m); err != nil {
		return Result{}, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	scratch := s.scratchPrefix() + hex.EncodeToString(b)
	if err := store.CreateDatabase(ctx, conn, scratch); err != nil {
		return Result{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := store.DropDatabase(dctx, conn, scratch); err != nil {
			s.log.Error("drop scratch database", "database", scratch, "err", err)
		}
	}()
	return s.restoreInto(ctx, m, scratch, false)
}
