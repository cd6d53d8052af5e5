package backup

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// mysqlClientArgs turns the test server's DSN into mysql client arguments
// (the password goes in MYSQL_PWD, never on the command line).
func mysqlClientArgs(t *testing.T) (args, env []string) {
	t.Helper()
	re := regexp.MustCompile(`^([^:@]*)(?::([^@]*))?@tcp\(([^:)]+)(?::(\d+))?\)/`)
	m := re.FindStringSubmatch(storetest.MySQLServerDSN())
	if m == nil {
		t.Skipf("cannot derive mysql client arguments from %q", storetest.MySQLServerDSN())
	}
	port := m[4]
	if port == "" {
		port = "3306"
	}
	env = append(os.Environ(), "MYSQL_PWD="+m[2])
	return []string{"--protocol=tcp", "-h", m[3], "-P", port, "-u", m[1]}, env
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// The runbook's restore works with the standard tools only:
//
//	age -d -i key.txt ID.sql.gz.age | gunzip | mysql DATABASE
//
// (age when installed; otherwise the file is decrypted with the Go library
// and the rest of the pipeline is the same), sha256sum matches the manifest,
// and the restored database equals the seeded one, table by table, with the
// manifest's row counts and checksums.
func TestRunbookRestoreWithStandardTools(t *testing.T) {
	t.Parallel()
	client := ""
	for _, c := range []string{"mariadb", "mysql"} {
		if _, err := exec.LookPath(c); err == nil {
			client = c
			break
		}
	}
	for _, tool := range []string{"gunzip", "bash", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if client == "" {
		t.Skip("neither the mariadb nor the mysql client is installed")
	}
	args, env := mysqlClientArgs(t)
	dir := newDirStore(t)
	b := setup(t, setupOpts{store: dir})
	ctx := context.Background()
	seed(t, b.db)
	want := snapshot(t, b.db, b.db.Name())
	m, err := b.svc.Run(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir.Root(), m.File)

	out, err := exec.Command("sha256sum", file).Output()
	if err != nil || !strings.HasPrefix(string(out), m.SHA256+" ") {
		t.Errorf("sha256sum = %q (%v), manifest %s", out, err, m.SHA256)
	}

	keyFile := filepath.Join(t.TempDir(), "key.txt")
	key := "# public key: " + b.identity.Recipient().String() + "\n" + b.identity.String() + "\n"
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	mysql := client + " " + strings.Join(args, " ")

	restore := func(name, decrypt string) {
		t.Helper()
		into := scratchDB(t, b)
		if err := store.CreateDatabase(ctx, b.db, into); err != nil {
			t.Fatal(err)
		}
		script := "set -euo pipefail; " + decrypt + " | gunzip | " + mysql + " " + shellQuote(into)
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %s: %v\n%s", name, script, err, stderr.String())
		}
		compareSnapshots(t, want, snapshot(t, b.db, into))
		dsn, _ := store.DSNForDatabase(b.dsn, into)
		rdb, err := store.Open(dsn, store.Options{MaxOpenConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		sums, err := tableSums(ctx, rdb)
		if err != nil {
			t.Fatal(err)
		}
		if err := compareSums(m.Tables, sums); err != nil {
			t.Errorf("%s: restored with the mysql client: %v", name, err)
		}
	}

	if _, err := exec.LookPath("age"); err == nil {
		restore("age CLI", "age -d -i "+shellQuote(keyFile)+" "+shellQuote(file))
	} else {
		t.Log("age is not installed (apt-get install age): decrypting with the Go library instead")
	}

	// The Go library stands in for `age -d`; gunzip and the client are real.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain, err := age.Decrypt(f, b.identity)
	if err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(t.TempDir(), m.ID+".sql.gz")
	g, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(g, plain); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	restore("age library", "cat "+shellQuote(gz))
}
