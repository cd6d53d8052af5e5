package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Processes started together (`iacc api`, `iacc worker`, the CLI) on a fresh
// checkout each create the local JWT secret and backup key on first use.
// They must agree on one of each, the one in the file: a process that kept
// a key another process overwrote would encrypt backups no one can read.
func TestLocalSecretsCreatedAtOnceAgree(t *testing.T) {
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "var")
		const n = 8
		secrets := make([]string, n)
		keys := make([]string, n)
		errs := make([]error, 2*n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				s, err := localJWTSecret(dir)
				secrets[i], errs[i] = string(s), err
			}()
			go func() {
				defer wg.Done()
				<-start
				id, err := localBackupKey(dir)
				if err == nil {
					keys[i] = id.String()
				}
				errs[n+i] = err
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		secretFile, err := os.ReadFile(filepath.Join(dir, "jwt-secret"))
		if err != nil {
			t.Fatal(err)
		}
		keyFile, err := os.ReadFile(filepath.Join(dir, "backup-age-key.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if secrets[i] != strings.TrimSpace(string(secretFile)) {
				t.Fatalf("round %d: a caller got JWT secret %q, the file holds %q", round, secrets[i], secretFile)
			}
			if !strings.Contains(string(keyFile), keys[i]) {
				t.Fatalf("round %d: a caller got a backup key that is not the one in the file", round)
			}
		}
		for _, name := range []string{"jwt-secret", "backup-age-key.txt"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("round %d: %s has mode %v, want 0600", round, name, fi.Mode().Perm())
			}
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
			t.Fatalf("round %d: temporary files left: %v", round, left)
		}
	}
}
