package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store/storetest"
)

func mapEnv(m map[string]string) envSource {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Env != "local" || cfg.HTTPAddr != ":8080" || cfg.BlobDir != "./var/blobs" || cfg.RedisURL != "redis://127.0.0.1:6379/0" ||
		cfg.MySQLDSN != "root@tcp(127.0.0.1:3306)/iacc" || !cfg.jwtGenerated || cfg.SecretKeys != nil || cfg.WorkerPoll != 20*time.Millisecond ||
		cfg.CacheTTL != 5*time.Minute || !cfg.CachePipeline || cfg.Retention.Deliveries != 90*24*time.Hour {
		t.Errorf("defaults = %+v", cfg)
	}
	if cfg, err := loadConfig(mapEnv(map[string]string{"IACC_CACHE_PIPELINE": "false"})); err != nil || cfg.CachePipeline {
		t.Errorf("IACC_CACHE_PIPELINE=false: pipeline %v, err %v", cfg.CachePipeline, err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	long := strings.Repeat("k", 32)
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"bad env":           {map[string]string{"IACC_ENV": "staging"}, "IACC_ENV"},
		"production secret": {map[string]string{"IACC_ENV": "production", "IACC_MAIL_FROM": "a@b.test"}, "IACC_JWT_SECRET: is required"},
		"short secret":      {map[string]string{"IACC_JWT_SECRET": "short"}, "IACC_JWT_SECRET: must be at least 32 bytes"},
		"dsn without db":    {map[string]string{"IACC_MYSQL_DSN": "root@tcp(127.0.0.1:3306)/"}, "IACC_MYSQL_DSN"},
		"garbage dsn":       {map[string]string{"IACC_MYSQL_DSN": "nonsense"}, "IACC_MYSQL_DSN"},
		"redis url":         {map[string]string{"IACC_REDIS_URL": "http://x"}, "IACC_REDIS_URL"},
		"redis db index":    {map[string]string{"IACC_REDIS_URL": "redis://127.0.0.1:6379/abc"}, "IACC_REDIS_URL"},
		"http addr":         {map[string]string{"IACC_HTTP_ADDR": "8080"}, "IACC_HTTP_ADDR"},
		"log level":         {map[string]string{"IACC_LOG_LEVEL": "loud"}, "IACC_LOG_LEVEL"},
		"duration":          {map[string]string{"IACC_WORKER_POLL_INTERVAL": "fast"}, "IACC_WORKER_POLL_INTERVAL"},
		"integer":           {map[string]string{"IACC_WORKER_CONCURRENCY": "0"}, "IACC_WORKER_CONCURRENCY"},
		"smtp url":          {map[string]string{"IACC_SMTP_URL": "ftp://mail:pw@x"}, "IACC_SMTP_URL"},
		"production from":   {map[string]string{"IACC_ENV": "production", "IACC_JWT_SECRET": long}, "IACC_MAIL_FROM: is required"},
		"webhook ports":     {map[string]string{"IACC_WEBHOOK_ALLOWED_PORTS": "80,http"}, "IACC_WEBHOOK_ALLOWED_PORTS"},
		"bool":              {map[string]string{"IACC_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "IACC_WEBHOOK_ALLOW_PRIVATE"},
		"short deliveries":  {map[string]string{"IACC_RETENTION_DELIVERIES": "240h"}, "IACC_RETENTION_DELIVERIES: must not be shorter than IACC_RETENTION_OUTBOX"},
		"production keys":   {map[string]string{"IACC_ENV": "production", "IACC_JWT_SECRET": long, "IACC_MAIL_FROM": "a@b.test"}, "IACC_SECRET_KEYS: is required"},
		"short key":         {map[string]string{"IACC_SECRET_KEYS": "k1:c2hvcnQ="}, "IACC_SECRET_KEYS: key \"k1\": want 32 bytes"},
		"key without id":    {map[string]string{"IACC_SECRET_KEYS": storetest.SecretKeys[5:]}, "IACC_SECRET_KEYS"},
	} {
		_, err := loadConfig(mapEnv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line naming %s", name, err, tc.want)
		}
	}
	cfg, err := loadConfig(mapEnv(map[string]string{"IACC_ENV": "production", "IACC_JWT_SECRET": long, "IACC_REDIS_URL": "redis://:pw@cache:6380/3",
		"IACC_MAIL_FROM": "Acme <purchasing@acme.test>", "IACC_SECRET_KEYS": "k2:" + strings.Repeat("A", 43) + "=," + storetest.SecretKeys}))
	if err != nil || string(cfg.JWTSecret) != long || cfg.Local() || cfg.SecretKeys == nil || cfg.SecretKeys.Current() != "k2" {
		t.Errorf("valid production config: %v", err)
	}
}

func TestLocalSecretKeysPersist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var")
	a, err := localSecretKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := localSecretKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := a.Seal("whsec_x", "c")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(sealed, "c"); err != nil || got != "whsec_x" || a.Current() != "local" {
		t.Fatalf("a second load does not open the first one's value: %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "secret-keys"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("var/secret-keys: %v, mode %v", err, fi.Mode().Perm())
	}
}

func TestLocalJWTSecretPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := localJWTSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := localJWTSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < 32 || string(a) != string(b) {
		t.Errorf("secrets %q and %q", a, b)
	}
	// A file too short to be a secret of ours is replaced.
	if err := os.WriteFile(filepath.Join(dir, "jwt-secret"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := localJWTSecret(dir)
	if err != nil || len(c) < 32 || string(c) == string(a) {
		t.Fatalf("after a short file: %q, %v", c, err)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(dir, "jwt-secret")); strings.TrimSpace(string(onDisk)) != string(c) {
		t.Errorf("the file holds %q, the secret is %q", onDisk, c)
	}
}
