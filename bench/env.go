package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/store"
)

// newHarness prepares a run: a temp dir, the database (dropped, recreated,
// migrated) and the Redis DB index (reserved, flushed).
func newHarness(ctx context.Context, cfg Config) (*Harness, error) {
	h := &Harness{cfg: cfg, fixtures: map[string]fixture{}}
	removeStaleTempDirs()
	tmp, err := os.MkdirTemp("", "iaccbench-")
	if err != nil {
		return h, fmt.Errorf("create temp dir: %w", err)
	}
	h.tmp = tmp
	if err := os.WriteFile(filepath.Join(tmp, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return h, fmt.Errorf("write pid file: %w", err)
	}
	// Both reservations come before anything is dropped or flushed: a
	// second run refuses to start instead of wiping the first one's data.
	if err := h.reserveDatabase(ctx); err != nil {
		return h, err
	}
	if err := h.setupRedis(ctx); err != nil {
		return h, err
	}
	if err := h.setupDatabase(ctx); err != nil {
		return h, err
	}
	if h.smtp, err = startSMTPSink(); err != nil {
		return h, err
	}
	return h, nil
}

// removeStaleTempDirs removes the temp dirs (binary, blobs, log) of runs
// that were killed before they could clean up: those whose pid file names a
// process that no longer exists.
func removeStaleTempDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "iaccbench-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(d)
		}
	}
}

// DSN is the iacc_bench database's DSN.
func (h *Harness) DSN() string {
	base := h.cfg.MySQLServer
	i := strings.LastIndex(base, "/")
	if i < 0 {
		return base + "/" + h.cfg.Database
	}
	return base[:i+1] + h.cfg.Database + base[i+1:]
}

// reserveDatabase takes a MySQL named lock on the bench database's name,
// on a connection kept until Close: another harness cannot drop it (or
// its <database>_backup) meanwhile, and a killed run's lock goes with its
// connection.
func (h *Harness) reserveDatabase(ctx context.Context) error {
	if strings.ContainsAny(h.cfg.Database, "`/?") || !strings.HasPrefix(h.cfg.Database, "iacc_bench") {
		return fmt.Errorf("refusing to drop database %q: its name must start with iacc_bench", h.cfg.Database)
	}
	// information_schema exists on every server: a place to connect to
	// while the bench database is dropped.
	base := h.cfg.MySQLServer
	i := strings.LastIndex(base, "/")
	admin, err := store.Open(base[:i+1]+"information_schema"+base[i+1:], store.Options{MaxOpenConns: 1})
	if err != nil {
		return fmt.Errorf("MySQL server DSN: %w", err)
	}
	conn, err := admin.Conn(ctx)
	if err != nil {
		_ = admin.Close()
		return fmt.Errorf("connect to MySQL at %s: %w", h.cfg.MySQLServer, err)
	}
	h.admin, h.adminConn = admin, conn
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&h.mysqlVersion); err != nil {
		return fmt.Errorf("connect to MySQL at %s: %w", h.cfg.MySQLServer, err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", databaseLockName(h.cfg.Database)).Scan(&got); err != nil {
		return fmt.Errorf("reserve database %s: %w", h.cfg.Database, err)
	}
	if got.Int64 != 1 {
		var holder sql.NullInt64
		_ = conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", databaseLockName(h.cfg.Database)).Scan(&holder)
		return fmt.Errorf("database %s is in use by another iaccbench run (MySQL connection %d holds the lock %q); wait for it to end or pass -database",
			h.cfg.Database, holder.Int64, databaseLockName(h.cfg.Database))
	}
	return nil
}

// databaseLockName is the MySQL named lock that reserves a bench database.
func databaseLockName(database string) string { return "iaccbench:" + database }

// setupDatabase drops, recreates and migrates the reserved database.
func (h *Harness) setupDatabase(ctx context.Context) error {
	admin := h.adminConn
	h.logf("drop and recreate database %s", h.cfg.Database)
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+store.QuoteIdent(h.cfg.Database)); err != nil {
		return fmt.Errorf("drop database %s: %w", h.cfg.Database, err)
	}
	if err := store.EnsureDatabase(ctx, h.DSN()); err != nil {
		return err
	}
	// The pool of the harness: as large as the server's default
	// (IACC_MYSQL_MAX_CONNS 64), so that the ceiling has the same pool.
	db, err := store.Open(h.DSN(), store.Options{MaxOpenConns: 64})
	if err != nil {
		return err
	}
	h.db = db
	if _, err := db.Migrate(ctx, nil); err != nil {
		return err
	}
	return nil
}

// redisLockKey is the reservation key storetest.NewRedis takes in DB 0 for
// a DB index: the harness takes the same one, so `go test ./...` running at
// the same time never has its database flushed under it (and vice versa).
func redisLockKey(i int) string { return fmt.Sprintf("iacc:test:redis-db-lock:%d", i) }

// infoField is the value of name in the text of Redis's INFO command.
func infoField(info, name string) (string, bool) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

func (h *Harness) setupRedis(ctx context.Context) error {
	ctl := redis.NewClient(&redis.Options{Addr: h.cfg.RedisAddr, DB: 0})
	info, err := ctl.Info(ctx, "server").Result()
	if err != nil {
		_ = ctl.Close()
		return fmt.Errorf("connect to Redis at %s: %w", h.cfg.RedisAddr, err)
	}
	h.redisVersion, _ = infoField(info, "redis_version")
	token := lockToken(os.Getpid())
	key := redisLockKey(h.cfg.RedisDB)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := ctl.SetNX(ctx, key, token, 2*time.Minute).Result()
		if err != nil {
			_ = ctl.Close()
			return fmt.Errorf("reserve Redis DB %d: %w", h.cfg.RedisDB, err)
		}
		if ok {
			break
		}
		// A harness killed with SIGKILL leaves its reservation behind for
		// up to 2 minutes: take it over if its process is gone.
		if holder, _ := ctl.Get(ctx, key).Result(); staleLock(holder) {
			h.logf("taking over Redis DB %d from a dead iaccbench (%s)", h.cfg.RedisDB, holder)
			ctl.Del(ctx, key)
			continue
		}
		if time.Now().After(deadline) {
			_ = ctl.Close()
			return fmt.Errorf("redis DB %d is reserved by a running test (key %s in DB 0); wait for it or pass -redis-db", h.cfg.RedisDB, key)
		}
		if !sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
			_ = ctl.Close()
			return ctx.Err()
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctl.Expire(context.Background(), key, 2*time.Minute)
			}
		}
	})
	h.releaseRedis = func() {
		close(stop)
		wg.Wait()
		if v, _ := ctl.Get(context.Background(), key).Result(); v == token {
			ctl.Del(context.Background(), key)
		}
		_ = ctl.Close()
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.cfg.RedisAddr, DB: h.cfg.RedisDB, PoolSize: 64})
	if err := h.rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush Redis DB %d: %w", h.cfg.RedisDB, err)
	}
	return nil
}

// dropQueues deletes asynq's keys (queues, tasks, servers, stats) from the
// harness's Redis DB and leaves the rest.
func (h *Harness) dropQueues(ctx context.Context) error {
	iter := h.rdb.Scan(ctx, 0, "asynq:*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := h.rdb.Unlink(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("unlink asynq keys: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan asynq keys: %w", err)
	}
	if len(batch) > 0 {
		if err := h.rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("unlink asynq keys: %w", err)
		}
	}
	return nil
}

// lockToken is the value of the harness's Redis reservation: it names the
// process, so that a later run can tell a dead holder (storetest's tokens
// are plain random hex and never match).
func lockToken(pid int) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("iaccbench:%s:%d:%s", host, pid, randomHex(4))
}

// staleLock reports whether a reservation was left by an iaccbench process
// of this host that no longer exists.
func staleLock(token string) bool {
	parts := strings.Split(token, ":")
	if len(parts) != 4 || parts[0] != "iaccbench" {
		return false
	}
	if host, _ := os.Hostname(); parts[1] != host {
		return false
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil || pid <= 0 {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// RedisURL is the URL the child uses.
func (h *Harness) RedisURL() string {
	return fmt.Sprintf("redis://%s/%d", h.cfg.RedisAddr, h.cfg.RedisDB)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is a tenant with an admin login and its vendors.
type fixture struct {
	TenantID int64
	AdminID  int64
	Email    string
	Password string
	Vendors  []int64
}

// fixture creates (once per run) a tenant named name with an admin and
// cfg.Vendors vendors, through the store package.
func (h *Harness) fixture(ctx context.Context, name string) (fixture, error) {
	if f, ok := h.fixtures[name]; ok {
		return f, nil
	}
	f := fixture{Email: "admin@" + name + ".bench.test", Password: "bench-" + randomHex(8)}
	hash, err := api.HashPassword(f.Password)
	if err != nil {
		return f, err
	}
	err = h.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := store.CreateTenant(ctx, tx, name, store.TenantSettings{AccountingEmails: []string{"accounting@" + name + ".bench.test"}})
		if err != nil {
			return err
		}
		u, err := store.CreateUser(ctx, tx, store.User{TenantID: t.ID, Email: f.Email, PasswordHash: hash, Role: store.RoleAdmin})
		if err != nil {
			return err
		}
		f.TenantID, f.AdminID, f.Vendors = t.ID, u.ID, nil
		for i := range max(1, h.cfg.Vendors) {
			v, err := store.CreateVendor(ctx, tx, store.Vendor{TenantID: t.ID, Name: fmt.Sprintf("Vendor %02d of %s", i+1, name),
				Email: fmt.Sprintf("orders@vendor%02d.bench.test", i+1), Address: fmt.Sprintf("%d Supply Road, 10115 Berlin", i+1)})
			if err != nil {
				return err
			}
			f.Vendors = append(f.Vendors, v.ID)
		}
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("create fixture %s: %w", name, err)
	}
	h.fixtures[name] = f
	return f, nil
}

// orderPayload is one order, as the API's JSON body and as the store's
// input: the same order through both paths.
type orderPayload struct {
	Body []byte
	In   store.NewPurchaseOrder
}

var itemCatalog = []struct{ desc, qty, price string }{
	{"A4 copy paper, 80 g/m², box of 5 reams", "2", "24.25"},
	{"Ballpoint pens, box of 50", "3", "12.50"},
	{"27-inch monitor", "1", "219.00"},
	{"Espresso beans, 1 kg", "4.5", "18.90"},
	{"Ink cartridge (black)", "6", "31.99"},
	{"Office chair, ergonomic", "1", "259.00"},
	{"USB-C docking station", "2", "149.95"},
	{"Whiteboard markers, set of 8", "5", "7.80"},
}

// orderPayloads returns one payload per vendor of f, each with n items.
func orderPayloads(f fixture, n int) ([]orderPayload, error) {
	type item struct {
		Description string `json:"description"`
		Quantity    string `json:"quantity"`
		UnitPrice   string `json:"unit_price"`
	}
	type body struct {
		VendorID int64  `json:"vendor_id"`
		Currency string `json:"currency"`
		Notes    string `json:"notes"`
		Items    []item `json:"items"`
	}
	out := make([]orderPayload, 0, len(f.Vendors))
	for vi, vendor := range f.Vendors {
		b := body{VendorID: vendor, Currency: "EUR", Notes: "Deliver to dock 3. Benchmark order."}
		in := store.NewPurchaseOrder{TenantID: f.TenantID, VendorID: vendor, Currency: b.Currency, Notes: b.Notes, CreatedBy: f.AdminID}
		for i := range n {
			c := itemCatalog[(vi+i)%len(itemCatalog)]
			b.Items = append(b.Items, item{c.desc, c.qty, c.price})
			in.Items = append(in.Items, store.PurchaseOrderItem{Description: c.desc,
				Quantity: decimal.RequireFromString(c.qty), UnitPrice: decimal.RequireFromString(c.price)})
		}
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode order payload: %w", err)
		}
		out = append(out, orderPayload{Body: raw, In: in})
	}
	return out, nil
}

// createOrders creates n orders of f directly through the store (not
// measured), 16 at a time; then, when set, runs in each order's own
// transaction. It returns the orders and their events.
func (h *Harness) createOrders(ctx context.Context, f fixture, n int,
	then func(tx *sql.Tx, c store.CreatedPurchaseOrder) error) ([]store.CreatedPurchaseOrder, error) {
	payloads, err := orderPayloads(f, h.cfg.Items)
	if err != nil {
		return nil, err
	}
	const workers = 16
	made := make([][]store.CreatedPurchaseOrder, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && ctx.Err() == nil; i += workers {
				in := payloads[i%len(payloads)].In
				in.RequestID = randomHex(12)
				var c store.CreatedPurchaseOrder
				err := h.db.InTx(ctx, func(tx *sql.Tx) error {
					var err error
					if c, err = store.CreatePurchaseOrder(ctx, tx, in); err != nil || then == nil {
						return err
					}
					return then(tx, c)
				})
				if err != nil {
					errs[w] = err
					return
				}
				made[w] = append(made[w], c)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create orders: %w", err)
	}
	var all []store.CreatedPurchaseOrder
	for _, m := range made {
		all = append(all, m...)
	}
	return all, ctx.Err()
}

// seedOrders creates n orders of f, marking their outbox events published
// in the same transaction so that the relay of a running child does not
// render PDFs for them. It returns their ids.
func (h *Harness) seedOrders(ctx context.Context, f fixture, n int) ([]int64, error) {
	made, err := h.createOrders(ctx, f, n, func(tx *sql.Tx, c store.CreatedPurchaseOrder) error {
		return store.MarkPublished(ctx, tx, c.Event.ID)
	})
	ids := make([]int64, len(made))
	for i, c := range made {
		ids[i] = c.Order.ID
	}
	return ids, err
}
