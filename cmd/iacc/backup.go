package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/backup"
)

// backupConfig is the backup part of Config (IACC_BACKUP_*, IACC_OPS_EMAIL).
type backupConfig struct {
	Dir          string // IACC_BACKUP_DIR: the local store, used unless S3Bucket is set
	S3Endpoint   string
	S3Bucket     string
	S3Prefix     string
	S3AccessKey  string
	S3SecretKey  redacted
	S3Region     string
	S3Insecure   bool
	Recipients   []string      // age public keys (not secret)
	Identities   ageIdentities // IACC_BACKUP_AGE_IDENTITY, parsed
	IdentityFile string        // IACC_BACKUP_AGE_IDENTITY_FILE, read when a Service is built
	KeepDays     int
	OverdueAfter time.Duration
	OpsEmail     string
}

// redacted is a secret string that prints as [redacted].
type redacted string

func (redacted) String() string { return "[redacted]" }

// ageIdentities are secret keys that print as their count only.
type ageIdentities []age.Identity

func (a ageIdentities) String() string { return fmt.Sprintf("[%d age identities, redacted]", len(a)) }

// loadBackupConfig reads the backup variables with loadConfig's helpers.
func loadBackupConfig(str func(name, def string) string, integer func(name string, def, minV, maxV int) int,
	duration func(name string, def, minV, maxV time.Duration) time.Duration, fail func(name, msg string)) backupConfig {
	b := backupConfig{
		Dir:        str("IACC_BACKUP_DIR", "./var/backups"),
		S3Endpoint: str("IACC_BACKUP_S3_ENDPOINT", ""), S3Bucket: str("IACC_BACKUP_S3_BUCKET", ""),
		S3Prefix: str("IACC_BACKUP_S3_PREFIX", ""), S3AccessKey: str("IACC_BACKUP_S3_ACCESS_KEY", ""),
		S3SecretKey: redacted(str("IACC_BACKUP_S3_SECRET_KEY", "")), S3Region: str("IACC_BACKUP_S3_REGION", "us-east-1"),
		IdentityFile: str("IACC_BACKUP_AGE_IDENTITY_FILE", ""),
		KeepDays:     integer("IACC_BACKUP_KEEP_DAYS", 30, 1, 3650),
		OverdueAfter: duration("IACC_BACKUP_OVERDUE_AFTER", 26*time.Hour, time.Hour, 30*24*time.Hour),
		OpsEmail:     str("IACC_OPS_EMAIL", ""),
	}
	switch v := strings.ToLower(str("IACC_BACKUP_S3_INSECURE", "false")); v {
	case "true", "1", "yes":
		b.S3Insecure = true
	case "false", "0", "no":
	default:
		fail("IACC_BACKUP_S3_INSECURE", fmt.Sprintf("must be true or false, got %q", v))
	}
	if b.S3Bucket != "" {
		if _, err := backup.NewS3Store(b.s3Config()); err != nil {
			fail("IACC_BACKUP_S3_ENDPOINT", err.Error())
		}
	}
	if (b.S3AccessKey == "") != (b.S3SecretKey == "") {
		fail("IACC_BACKUP_S3_ACCESS_KEY", "IACC_BACKUP_S3_ACCESS_KEY and IACC_BACKUP_S3_SECRET_KEY must be set together")
	}
	if v := str("IACC_BACKUP_AGE_RECIPIENT", ""); v != "" {
		_, texts, err := backup.ParseRecipients(v)
		if err != nil {
			fail("IACC_BACKUP_AGE_RECIPIENT", err.Error())
		}
		b.Recipients = texts
	}
	if v := str("IACC_BACKUP_AGE_IDENTITY", ""); v != "" {
		if b.IdentityFile != "" {
			fail("IACC_BACKUP_AGE_IDENTITY", "set IACC_BACKUP_AGE_IDENTITY or IACC_BACKUP_AGE_IDENTITY_FILE, not both")
		}
		ids, err := backup.ParseIdentities(v)
		if err != nil {
			fail("IACC_BACKUP_AGE_IDENTITY", err.Error())
		}
		b.Identities = ids
	}
	if b.OpsEmail != "" && (!strings.Contains(b.OpsEmail, "@") || strings.ContainsAny(b.OpsEmail, " ,;<>")) {
		fail("IACC_OPS_EMAIL", fmt.Sprintf("must be one email address, got %q", b.OpsEmail))
	}
	return b
}

func (b backupConfig) s3Config() backup.S3Config {
	return backup.S3Config{Endpoint: b.S3Endpoint, Bucket: b.S3Bucket, Prefix: b.S3Prefix, AccessKey: b.S3AccessKey,
		SecretKey: string(b.S3SecretKey), Region: b.S3Region, Insecure: b.S3Insecure}
}

// localBackupKey returns the age key kept in var/backup-age-key.txt (created
// on first use) so that backups work out of the box in local mode. Its
// public key is printed in the file, as age-keygen does.
func localBackupKey(dir string) (*age.X25519Identity, error) {
	path := filepath.Join(dir, "backup-age-key.txt")
	b, err := readOrCreate(path, func() ([]byte, error) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, fmt.Errorf("generate backup key: %w", err)
		}
		return fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id), nil
	})
	if err != nil {
		return nil, err
	}
	ids, err := backup.ParseIdentities(string(b))
	if err != nil || len(ids) != 1 {
		return nil, fmt.Errorf("%s: not an age key file", path)
	}
	if id, ok := ids[0].(*age.X25519Identity); ok {
		return id, nil
	}
	return nil, fmt.Errorf("%s: not an X25519 age key", path)
}

// newBackupService builds the backup service of a process. queue and set
// may be nil (the CLI neither emails alerts nor exports metrics).
func newBackupService(cfg Config, db *store.DB, queue *asynq.Client, set *metrics.Set, log *slog.Logger) (*backup.Service, error) {
	b := cfg.Backup
	var st backup.Store
	if b.S3Bucket != "" {
		s3, err := backup.NewS3Store(b.s3Config())
		if err != nil {
			return nil, fmt.Errorf("IACC_BACKUP_S3_ENDPOINT: %w", err)
		}
		st = s3
	} else {
		dir, err := backup.NewDirStore(b.Dir)
		if err != nil {
			return nil, fmt.Errorf("IACC_BACKUP_DIR: %w", err)
		}
		st = dir
	}
	recipients := b.Recipients
	identities := []age.Identity(b.Identities)
	if b.IdentityFile != "" {
		ids, err := backup.ReadIdentityFile(b.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("IACC_BACKUP_AGE_IDENTITY_FILE: %w", err)
		}
		identities = ids
	}
	if len(recipients) == 0 && len(identities) == 0 && cfg.Local() {
		id, err := localBackupKey("./var")
		if err != nil {
			return nil, fmt.Errorf("IACC_BACKUP_AGE_RECIPIENT: %w", err)
		}
		log.Warn("IACC_BACKUP_AGE_RECIPIENT is not set: backups use the local development key in ./var/backup-age-key.txt; set it in production")
		recipients, identities = []string{id.Recipient().String()}, []age.Identity{id}
	}
	svc, err := backup.New(backup.Config{
		DB: db, DSN: cfg.MySQLDSN, Store: st, Recipients: recipients, Identities: identities,
		KeepDays: b.KeepDays, OverdueAfter: b.OverdueAfter, OpsEmail: b.OpsEmail, Queue: queue,
		Metrics: set, Version: version, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("IACC_BACKUP_AGE_RECIPIENT: %w", err)
	}
	return svc, nil
}

func (c *cli) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write, list, verify and restore encrypted database backups",
		Long: `Backups are consistent logical dumps of the database (plain SQL), gzip-compressed
and encrypted with age to IACC_BACKUP_AGE_RECIPIENT, stored with a manifest in
IACC_BACKUP_DIR or an S3 bucket (IACC_BACKUP_S3_*). The worker writes one every
night, prunes to IACC_BACKUP_KEEP_DAYS days and verifies the latest weekly.
Verify and restore need the secret key: IACC_BACKUP_AGE_IDENTITY(_FILE).
Runbook: docs/runbooks/backup-restore.md.`,
	}
	open := func(cmd *cobra.Command) (*backup.Service, *store.DB, error) {
		db, cfg, err := c.openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		_, log, _ := c.config()
		svc, err := newBackupService(cfg, db, nil, nil, log)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		return svc, db, nil
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "run",
		Short: "Write a backup now (and prune old ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			m, err := svc.Run(cmd.Context(), time.Time{})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "backup %s written to %s: %s (%s of SQL), %d tables, %d rows, in %s\n",
				m.ID, svc.Store(), humanBytes(m.Bytes), humanBytes(m.SQLBytes), len(m.Tables), m.Rows(), m.Duration().Round(time.Millisecond))
			return nil
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List the stored backups, newest first, with their last verification",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			list, err := svc.List(cmd.Context())
			if err != nil {
				return err
			}
			runs, err := store.ListBackupRuns(cmd.Context(), db, store.BackupKindVerify, 1000)
			if err != nil {
				return err
			}
			verified := map[string]string{}
			for _, r := range runs { // newest first: keep the first per backup
				if _, ok := verified[r.BackupID]; !ok && r.FinishedAt != nil {
					verified[r.BackupID] = r.State + " " + r.FinishedAt.UTC().Format("2006-01-02 15:04")
				}
			}
			fmt.Fprintf(c.out, "%d backup(s) in %s\n", len(list), svc.Store())
			tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSIZE\tSQL\tTABLES\tROWS\tDURATION\tVERIFIED")
			for _, m := range list {
				v := verified[m.ID]
				if v == "" {
					v = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", m.ID, humanBytes(m.Bytes), humanBytes(m.SQLBytes), len(m.Tables), m.Rows(),
					m.Duration().Round(time.Millisecond), v)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "verify [ID]",
		Short: "Restore a backup (default: the latest) into a scratch database and compare it with its manifest",
		Long: `Restore the backup into a scratch database named <database>_verify_<random> on
the same server, compare every table's row count and checksum with the
manifest (and the file's SHA-256), drop the scratch database and record the
result. Needs IACC_BACKUP_AGE_IDENTITY(_FILE) and the right to create and drop
that database.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			res, err := svc.Verify(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "backup %s verified: %d tables, %d rows match the manifest (restored into a scratch database in %s)\n",
				res.BackupID, res.Tables, res.Rows, res.Duration.Round(time.Millisecond))
			return nil
		},
	})
	var into string
	var force bool
	restore := &cobra.Command{
		Use:   "restore ID --into DATABASE [--force]",
		Short: "Restore a backup into a database on the server of IACC_MYSQL_DSN",
		Long: `Restore backup ID into DATABASE (created if absent) on the server of
IACC_MYSQL_DSN, then compare every table with the manifest. A database that
holds tables, and the live database, are refused unless --force, which drops
their tables first. Needs IACC_BACKUP_AGE_IDENTITY(_FILE).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if into == "" {
				return errors.New("--into DATABASE is required")
			}
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := svc.Restore(cmd.Context(), backup.RestoreOptions{ID: args[0], Into: into, Force: force})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "backup %s restored into %s: %d tables, %d rows match the manifest (%s)\n",
				res.BackupID, res.Database, res.Tables, res.Rows, res.Duration.Round(time.Millisecond))
			return nil
		},
	}
	restore.Flags().StringVar(&into, "into", "", "database to restore into (required)")
	restore.Flags().BoolVar(&force, "force", false, "replace the tables of a non-empty database (or of the live one)")
	cmd.AddCommand(restore)
	return cmd
}

// humanBytes prints a byte count for people.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
