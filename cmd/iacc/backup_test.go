package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

var backupIDOut = regexp.MustCompile(`backup (\d{8}T\d{6}Z) written`)

// vendorNames lists the vendors of a database, in id order.
func vendorNames(t *testing.T, db *store.DB, schema string) []string {
	t.Helper()
	return storetest.Strings(t, db, "SELECT name FROM "+store.QuoteIdent(schema)+".vendors ORDER BY id")
}

// iacc backup run | list | verify | restore, end to end through the
// configuration: a backup is written to IACC_BACKUP_DIR, verified with the
// identity file, and restored into a new database; errors name what to do.
func TestBackupCommands(t *testing.T) {
	t.Parallel()
	db, dsn := storetest.NewDBWithDSN(t)
	ten := storetest.Tenant(t, db, "acme")
	storetest.Vendor(t, db, ten.ID, "Café Müller")
	storetest.Vendor(t, db, ten.ID, "Globex 'Hardware'")
	want := vendorNames(t, db, db.Name())

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte("# public key: "+id.Recipient().String()+"\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"IACC_ENV": "local", "IACC_LOG_LEVEL": "error", "IACC_SECRET_KEYS": storetest.SecretKeys,
		"IACC_MYSQL_DSN": dsn, "IACC_BACKUP_DIR": t.TempDir(), "IACC_BACKUP_AGE_RECIPIENT": id.Recipient().String(),
	}

	out, err := runCLI(t, env, "backup", "run")
	m := backupIDOut.FindStringSubmatch(out)
	if err != nil || m == nil || !strings.Contains(out, env["IACC_BACKUP_DIR"]) {
		t.Fatalf("backup run: %v\n%s", err, out)
	}
	backupID := m[1]
	if _, err := os.Stat(filepath.Join(env["IACC_BACKUP_DIR"], backupID+".sql.gz.age")); err != nil {
		t.Fatalf("backup file: %v", err)
	}
	out, err = runCLI(t, env, "backup", "list")
	if err != nil || !strings.Contains(out, "1 backup(s)") || !regexp.MustCompile(backupID+`.*\s-\n`).MatchString(out) {
		t.Fatalf("backup list: %v\n%s", err, out)
	}

	if _, err := runCLI(t, env, "backup", "verify"); err == nil || !strings.Contains(err.Error(), "IACC_BACKUP_AGE_IDENTITY") {
		t.Errorf("verify without identity: %v", err)
	}
	env["IACC_BACKUP_AGE_IDENTITY_FILE"] = keyFile
	out, err = runCLI(t, env, "backup", "verify")
	if err != nil || !strings.Contains(out, "backup "+backupID+" verified") {
		t.Fatalf("backup verify: %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "backup", "list")
	if err != nil || !strings.Contains(out, "succeeded") {
		t.Errorf("list after verify: %v\n%s", err, out)
	}

	if _, err := db.ExecContext(context.Background(), `UPDATE vendors SET name = CONCAT(name, ' (changed)')`); err != nil {
		t.Fatal(err)
	}
	into := db.Name() + "_cli_restore"
	t.Cleanup(func() { _ = store.DropDatabase(context.Background(), db, into) })
	out, err = runCLI(t, env, "backup", "restore", backupID, "--into", into)
	if err != nil || !strings.Contains(out, "restored into "+into) {
		t.Fatalf("backup restore: %v\n%s", err, out)
	}
	if got := vendorNames(t, db, into); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored vendors %q, want %q", got, want)
	}
	if _, err := runCLI(t, env, "backup", "restore", backupID, "--into", into); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore into a non-empty database: %v", err)
	}
	if _, err := runCLI(t, env, "backup", "restore", backupID, "--into", into, "--force"); err != nil {
		t.Errorf("forced restore: %v", err)
	}
	if _, err := runCLI(t, env, "backup", "restore", backupID); err == nil || !strings.Contains(err.Error(), "--into") {
		t.Errorf("restore without --into: %v", err)
	}
	if _, err := runCLI(t, env, "backup", "verify", "yesterday"); err == nil || !strings.Contains(err.Error(), "invalid backup id") {
		t.Errorf("verify of a bad id: %v", err)
	}
}

// The same commands with the S3-compatible store configured.
func TestBackupCommandsS3(t *testing.T) {
	t.Parallel()
	_, dsn := storetest.NewDBWithDSN(t)
	backend := s3mem.New()
	if err := backend.CreateBucket("ops-backups"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	id, _ := age.GenerateX25519Identity()
	env := map[string]string{
		"IACC_ENV": "local", "IACC_LOG_LEVEL": "error", "IACC_MYSQL_DSN": dsn, "IACC_SECRET_KEYS": storetest.SecretKeys,
		"IACC_BACKUP_S3_ENDPOINT": strings.TrimPrefix(srv.URL, "http://"), "IACC_BACKUP_S3_INSECURE": "true",
		"IACC_BACKUP_S3_BUCKET": "ops-backups", "IACC_BACKUP_S3_PREFIX": "iacc/", "IACC_BACKUP_S3_ACCESS_KEY": "ak",
		"IACC_BACKUP_S3_SECRET_KEY": "sk", "IACC_BACKUP_AGE_RECIPIENT": id.Recipient().String(), "IACC_BACKUP_AGE_IDENTITY": id.String(),
	}
	out, err := runCLI(t, env, "backup", "run")
	if err != nil || !strings.Contains(out, "s3://ops-backups/iacc/") {
		t.Fatalf("backup run to S3: %v\n%s", err, out)
	}
	objs, err := backend.ListBucket("ops-backups", nil, gofakes3.ListBucketPage{})
	if err != nil || len(objs.Contents) != 2 || !strings.HasPrefix(objs.Contents[0].Key, "iacc/") {
		t.Fatalf("objects in the bucket: %+v, %v", objs, err)
	}
	if out, err := runCLI(t, env, "backup", "verify"); err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("backup verify from S3: %v\n%s", err, out)
	}
}

func TestBackupConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	id, _ := age.GenerateX25519Identity()
	secret := id.String()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"recipient":         {map[string]string{"IACC_BACKUP_AGE_RECIPIENT": "age1nope"}, "IACC_BACKUP_AGE_RECIPIENT"},
		"secret as public":  {map[string]string{"IACC_BACKUP_AGE_RECIPIENT": secret}, "a secret key, not a public key"},
		"identity":          {map[string]string{"IACC_BACKUP_AGE_IDENTITY": "AGE-SECRET-KEY-1NOPE"}, "IACC_BACKUP_AGE_IDENTITY"},
		"identity and file": {map[string]string{"IACC_BACKUP_AGE_IDENTITY": secret, "IACC_BACKUP_AGE_IDENTITY_FILE": "/k"}, "not both"},
		"keep days":         {map[string]string{"IACC_BACKUP_KEEP_DAYS": "0"}, "IACC_BACKUP_KEEP_DAYS"},
		"overdue":           {map[string]string{"IACC_BACKUP_OVERDUE_AFTER": "soon"}, "IACC_BACKUP_OVERDUE_AFTER"},
		"insecure":          {map[string]string{"IACC_BACKUP_S3_INSECURE": "maybe"}, "IACC_BACKUP_S3_INSECURE"},
		"endpoint":          {map[string]string{"IACC_BACKUP_S3_BUCKET": "b", "IACC_BACKUP_S3_ENDPOINT": "ftp://x"}, "IACC_BACKUP_S3_ENDPOINT"},
		"keys together":     {map[string]string{"IACC_BACKUP_S3_ACCESS_KEY": "a"}, "IACC_BACKUP_S3_ACCESS_KEY"},
		"ops email":         {map[string]string{"IACC_OPS_EMAIL": "ops"}, "IACC_OPS_EMAIL"},
	} {
		_, err := loadConfig(mapEnv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: err = %v, want one naming %s (and never the key)", name, err, tc.want)
		}
	}
	cfg, err := loadConfig(mapEnv(map[string]string{"IACC_BACKUP_AGE_RECIPIENT": id.Recipient().String(), "IACC_BACKUP_AGE_IDENTITY": secret,
		"IACC_BACKUP_S3_SECRET_KEY": "hunter2", "IACC_BACKUP_S3_ACCESS_KEY": "a", "IACC_OPS_EMAIL": "ops@example.test"}))
	if err != nil || cfg.Backup.KeepDays != 30 || cfg.Backup.Dir != "./var/backups" || len(cfg.Backup.Identities) != 1 {
		t.Fatalf("valid backup config: %+v, %v", cfg.Backup, err)
	}
	if s := fmt.Sprintf("%+v", cfg); strings.Contains(s, "hunter2") || strings.Contains(s, secret) || strings.Contains(s, "AGE-SECRET") {
		t.Errorf("printing the configuration shows a backup secret: %s", s)
	}
}
