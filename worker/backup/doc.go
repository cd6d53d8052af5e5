// Package backup writes, lists, verifies and restores encrypted logical
// backups of iacc's MySQL/MariaDB database, and handles the backup:run,
// backup:verify and backup:check tasks.
//
// # What a backup is
//
// A backup is two objects in a [Store] (a local directory, [DirStore], or an
// S3-compatible bucket, [S3Store]):
//
//	20261125T020000Z.sql.gz.age     the SQL dump, gzip-compressed, age-encrypted
//	20261125T020000Z.manifest.json  id, sizes, SHA-256 of the file, per-table row counts and checksums
//
// The dump is plain SQL that the standard client loads
// (age -d -i key.txt ID.sql.gz.age | gunzip | mysql DATABASE; see
// docs/runbooks/backup-restore.md): SET statements, then for each base table
// DROP TABLE IF EXISTS, CREATE TABLE as SHOW CREATE TABLE prints it, and
// multi-row INSERTs of about 1 MB. Strings are quoted with backslash escapes,
// binary columns are hex literals, NULL is NULL, DECIMALs are written as the
// server prints them, DATETIME/TIMESTAMP/DATE as their text at the session's
// UTC time zone. The goose version table is a table like the others.
//
// # How it is written
//
// [Service.Run] dumps the database from one connection inside
// START TRANSACTION WITH CONSISTENT SNAPSHOT (REPEATABLE READ): every table is
// read at the same instant, while the application keeps writing. The dump is
// written by the dumper into gzip, age and an io.Pipe whose reader is the
// store's upload, so the dump is never held in memory: memory use is a few
// buffers (and one S3 part, 16 MiB) whatever the database's size.
//
// While dumping, each table's rows are hashed in primary-key order over a
// canonical encoding of the values as the server sends them (SHA-256); the
// verifier reads the restored database with the same query and hash.
//
// A named lock (GET_LOCK) on the dump connection keeps two backups of one
// database from running at once; a backup whose id already has a manifest is
// not written again, so a duplicate backup:run task is a no-op.
//
// # Restore, verify, retention, alerts
//
// [Service.Restore] checks the file's SHA-256 against the manifest, decrypts
// with the age identity, executes the statements into a named database
// (refusing a non-empty one unless forced) and compares every table with the
// manifest. [Service.Verify] does the same into a scratch database that it
// drops afterwards, and records the result. [Service.Prune] keeps the backups
// of the last KeepDays days that have one (30 by default) and deletes older
// ones; Run prunes after each successful backup.
//
// Every run is recorded in backup_runs. A failed backup or verification (its
// last attempt) sends a "notice" email to the ops address; backup:check
// (hourly) sends one a day while no backup has succeeded in OverdueAfter
// (26 hours). [ReadStatus] and [NewCollector] give the metrics code the last
// successful backup, the last verification and the overdue flag.
//
// This package imports store and tasks; the SQL of the dumper and restorer is
// here rather than in store because it reads any table generically.
package backup
