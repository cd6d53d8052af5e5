package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
)

// MySQLServerDSN is the DSN (without database) of the test MySQL server.
func MySQLServerDSN() string {
	if v := os.Getenv("IACC_TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// RedisAddr is the host:port of the test Redis server.
func RedisAddr() string {
	if v := os.Getenv("IACC_TEST_REDIS_URL"); v != "" {
		opt, err := redis.ParseURL(v)
		if err == nil {
			return opt.Addr
		}
	}
	return "127.0.0.1:6379"
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DSNFor returns the DSN of database name on the test server.
func DSNFor(name string) string {
	base := MySQLServerDSN()
	i := strings.LastIndex(base, "/")
	rest := ""
	if q := strings.Index(base[i:], "?"); q >= 0 {
		rest = base[i+q:]
		base = base[:i+q]
	}
	return base[:i+1] + name + rest
}

// NewDB creates a fresh database named after the test, migrates it and drops
// it when the test ends (unless IACC_TEST_KEEP_DB is set). It returns the pool
// and the DSN, which child processes may use.
func NewDB(t testing.TB) *store.DB {
	db, _ := NewDBWithDSN(t)
	return db
}

// SecretKeys is the IACC_SECRET_KEYS of tests. NewDB makes it the process's
// keyring, so every test's webhook secrets are sealed with it, and servers
// or commands run in the test process must be given this same value (the
// keyring is one per process).
const SecretKeys = "test:dGVzdC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmNkZWY="

var useTestKeys sync.Once

// NewDBWithDSN is NewDB that also returns the database's DSN.
func NewDBWithDSN(t testing.TB) (*store.DB, string) {
	t.Helper()
	useTestKeys.Do(func() {
		k, err := store.ParseKeyring(SecretKeys)
		if err != nil {
			panic(err)
		}
		store.UseKeyring(k)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := "iacc_test_" + randomSuffix()
	dsn := DSNFor(name)
	if err := store.EnsureDatabase(ctx, dsn); err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	db, err := store.Open(dsn, store.Options{MaxOpenConns: 16, MaxIdleConns: 4})
	if err != nil {
		t.Fatalf("storetest: open %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if os.Getenv("IACC_TEST_KEEP_DB") == "" {
			if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+store.QuoteIdent(name)); err != nil {
				t.Errorf("storetest: drop database %s: %v", name, err)
			}
		}
		_ = db.Close()
	})
	if _, err := db.Migrate(ctx, nil); err != nil {
		t.Fatalf("storetest: migrate %s: %v", name, err)
	}
	return db, dsn
}

// Redis is a reserved, flushed Redis database index.
type Redis struct {
	*redis.Client
	DB  int
	URL string // redis://host:port/DB
}

// NewRedis reserves one of the DB indexes 1..15 of the test Redis server for
// the rest of the test (a lock key in DB 0, refreshed while held), flushes it,
// and flushes and releases it at the end. It waits for a free index.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	addr := RedisAddr()
	ctl := redis.NewClient(&redis.Options{Addr: addr, DB: 0})
	token := randomSuffix()
	ctx, cancel := context.WithCancel(context.Background())
	deadline := time.Now().Add(3 * time.Minute)
	idx := -1
	for idx < 0 {
		for i := 1; i <= 15; i++ {
			ok, err := ctl.SetNX(ctx, lockKey(i), token, 2*time.Minute).Result()
			if err != nil {
				cancel()
				t.Fatalf("storetest: reserve redis db at %s: %v", addr, err)
			}
			if ok {
				idx = i
				break
			}
		}
		if idx >= 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("storetest: no free redis DB index in 3 minutes")
		}
		waitCtx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		<-waitCtx.Done() // polling a lock held by another test process; nothing to wait on but time
		wcancel()
	}
	done := make(chan struct{})
	go func() { // keep the reservation alive while the test runs
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				ctl.Expire(ctx, lockKey(idx), 2*time.Minute)
			}
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: idx})
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("storetest: flush redis db %d: %v", idx, err)
	}
	t.Cleanup(func() {
		close(done)
		_ = c.FlushDB(context.Background()).Err()
		_ = c.Close()
		if v, _ := ctl.Get(context.Background(), lockKey(idx)).Result(); v == token {
			ctl.Del(context.Background(), lockKey(idx))
		}
		cancel()
		_ = ctl.Close()
	})
	return &Redis{Client: c, DB: idx, URL: fmt.Sprintf("redis://%s/%d", addr, idx)}
}

func lockKey(i int) string { return fmt.Sprintf("iacc:test:redis-db-lock:%d", i) }

// Tenant creates a tenant with a unique name starting with prefix.
func Tenant(t testing.TB, db *store.DB, prefix string) store.Tenant {
	t.Helper()
	ten, err := store.CreateTenant(context.Background(), db, prefix+"-"+randomSuffix(), store.TenantSettings{})
	if err != nil {
		t.Fatalf("storetest: create tenant: %v", err)
	}
	return ten
}

// Vendor creates an active vendor of the tenant.
func Vendor(t testing.TB, db *store.DB, tenantID int64, name string) store.Vendor {
	t.Helper()
	v, err := store.CreateVendor(context.Background(), db, store.Vendor{TenantID: tenantID, Name: name, Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@vendor.test"})
	if err != nil {
		t.Fatalf("storetest: create vendor: %v", err)
	}
	return v
}

// PurchaseOrder creates a committed order with n items of 2 × 10.50.
func PurchaseOrder(t testing.TB, db *store.DB, tenantID, vendorID int64, n int) store.CreatedPurchaseOrder {
	t.Helper()
	items := make([]store.PurchaseOrderItem, n)
	for i := range items {
		items[i] = store.PurchaseOrderItem{Description: fmt.Sprintf("item %d", i+1), Quantity: decimal.NewFromInt(2), UnitPrice: decimal.RequireFromString("10.50")}
	}
	var out store.CreatedPurchaseOrder
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		out, err = store.CreatePurchaseOrder(context.Background(), tx, store.NewPurchaseOrder{TenantID: tenantID, VendorID: vendorID, Currency: "EUR", Items: items})
		return err
	})
	if err != nil {
		t.Fatalf("storetest: create purchase order: %v", err)
	}
	return out
}

// Strings runs query and returns the first column of every row as a string,
// in the order the rows come.
func Strings(t testing.TB, q store.Querier, query string, args ...any) []string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("storetest: %s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("storetest: %s: %v", query, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("storetest: %s: %v", query, err)
	}
	return out
}
