package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Backup run kinds (backup_runs.kind).
const (
	BackupKindBackup = "backup" // a dump written to the backup store
	BackupKindVerify = "verify" // a backup restored into a scratch database and compared
)

// Backup run states (backup_runs.state).
const (
	BackupRunning   = "running"
	BackupSucceeded = "succeeded"
	BackupFailed    = "failed"
)

// BackupRun is one backup or verification run.
type BackupRun struct {
	ID         int64
	Kind       string
	BackupID   string // e.g. 20261125T020000Z
	State      string
	Bytes      int64 // encrypted size of the backup file
	Duration   time.Duration
	Error      string
	StartedAt  time.Time
	FinishedAt *time.Time
}

const backupRunColumns = `id, kind, backup_id, state, bytes, duration_ms, error, started_at, finished_at`

// StartBackupRun records a run that has started and returns its id.
func StartBackupRun(ctx context.Context, q Querier, kind, backupID string, startedAt time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO backup_runs (kind, backup_id, state, started_at) VALUES (?, ?, ?, ?)`,
		kind, backupID, BackupRunning, startedAt.UTC())
	if err != nil {
		return 0, mapErr(err, "record start of "+kind+" run")
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("record start of %s run: %w", kind, err)
	}
	return id, nil
}

// FinishBackupRun records the outcome of run id: state is BackupSucceeded or
// BackupFailed; errText (cut to 2000 characters) says why a run failed.
func FinishBackupRun(ctx context.Context, q Querier, id int64, state string, bytes int64, d time.Duration, errText string, finishedAt time.Time) error {
	if state != BackupSucceeded && state != BackupFailed {
		return fmt.Errorf("finish backup run %d: invalid state %q", id, state)
	}
	if len(errText) > 2000 {
		errText = strings.ToValidUTF8(errText[:2000], "")
	}
	res, err := q.ExecContext(ctx, `UPDATE backup_runs SET state = ?, bytes = ?, duration_ms = ?, error = ?, finished_at = ? WHERE id = ?`,
		state, max(bytes, 0), max(d.Milliseconds(), 0), errText, finishedAt.UTC(), id)
	if err != nil {
		return mapErr(err, fmt.Sprintf("finish backup run %d", id))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("finish backup run %d: %w", id, ErrNotFound)
	}
	return nil
}

// AbandonBackupRuns marks the runs of kind still 'running' that started
// before cutoff as failed: their process ended without recording an outcome.
func AbandonBackupRuns(ctx context.Context, q Querier, kind string, cutoff time.Time, now time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `UPDATE backup_runs SET state = ?, error = ?, finished_at = ?
		WHERE kind = ? AND state = ? AND started_at < ?`,
		BackupFailed, "abandoned: the process ended before the run finished", now.UTC(), kind, BackupRunning, cutoff.UTC())
	if err != nil {
		return 0, mapErr(err, "mark abandoned "+kind+" runs")
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// LastBackupRun returns the most recently finished run of kind in one of the
// given states (any finished state when none is given). No such run is a
// wrapped ErrNotFound.
func LastBackupRun(ctx context.Context, q Querier, kind string, states ...string) (BackupRun, error) {
	if len(states) == 0 {
		states = []string{BackupSucceeded, BackupFailed}
	}
	args := []any{kind}
	for _, s := range states {
		args = append(args, s)
	}
	row := q.QueryRowContext(ctx, `SELECT `+backupRunColumns+` FROM backup_runs
		WHERE kind = ? AND state IN (`+placeholders(len(states))+`) AND finished_at IS NOT NULL
		ORDER BY finished_at DESC, id DESC LIMIT 1`, args...)
	r, err := scanBackupRun(row)
	if err != nil {
		return BackupRun{}, mapErr(err, "last "+kind+" run")
	}
	return r, nil
}

// ListBackupRuns returns the latest runs of kind ("" for every kind), newest
// first.
func ListBackupRuns(ctx context.Context, q Querier, kind string, limit int) ([]BackupRun, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT ` + backupRunColumns + ` FROM backup_runs`
	args := []any{}
	if kind != "" {
		query += ` WHERE kind = ?`
		args = append(args, kind)
	}
	query += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err, "list backup runs")
	}
	defer rows.Close()
	var out []BackupRun
	for rows.Next() {
		r, err := scanBackupRun(rows)
		if err != nil {
			return nil, fmt.Errorf("scan backup run: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanBackupRun(s interface{ Scan(...any) error }) (BackupRun, error) {
	var r BackupRun
	var ms int64
	var fin sql.NullTime
	if err := s.Scan(&r.ID, &r.Kind, &r.BackupID, &r.State, &r.Bytes, &ms, &r.Error, &r.StartedAt, &fin); err != nil {
		return BackupRun{}, err
	}
	r.Duration = time.Duration(ms) * time.Millisecond
	if fin.Valid {
		t := fin.Time
		r.FinishedAt = &t
	}
	return r, nil
}

// DSNForDatabase returns dsn with its database replaced by name: the same
// server, credentials and parameters (restores and verifications open scratch
// databases this way).
func DSNForDatabase(dsn, name string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("parse MySQL DSN: %w", err)
	}
	if name == "" {
		return "", errors.New("empty database name")
	}
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

// CountTables returns how many tables and views database name holds (0 for
// a database that does not exist).
func CountTables(ctx context.Context, q Querier, name string) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, name).Scan(&n); err != nil {
		return 0, mapErr(err, "count tables of "+name)
	}
	return n, nil
}

// DatabaseExists reports whether database name exists.
func DatabaseExists(ctx context.Context, q Querier, name string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name).Scan(&n); err != nil {
		return false, mapErr(err, "look up database "+name)
	}
	return n > 0, nil
}

// CreateDatabase creates database name (utf8mb4) if it does not exist.
func CreateDatabase(ctx context.Context, q Querier, name string) error {
	_, err := q.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+QuoteIdent(name)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	return mapErr(err, "create database "+name)
}

// DropDatabase drops database name if it exists.
func DropDatabase(ctx context.Context, q Querier, name string) error {
	_, err := q.ExecContext(ctx, "DROP DATABASE IF EXISTS "+QuoteIdent(name))
	return mapErr(err, "drop database "+name)
}

// ListDatabasesWithPrefix returns the databases whose name starts with prefix.
func ListDatabasesWithPrefix(ctx context.Context, q Querier, prefix string) ([]string, error) {
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
	rows, err := q.QueryContext(ctx, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? ORDER BY SCHEMA_NAME`, like)
	if err != nil {
		return nil, mapErr(err, "list databases")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("scan database name: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
