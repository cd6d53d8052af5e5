package api

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/metrics"
)

// readCache caches JSON responses of reads in Redis, tagged with a
// per-tenant generation number. Every write of a tenant increments its
// generation before the write's response is sent, and an entry is served
// only while its tag is the tenant's current generation, so a read after a
// write never gets an entry made before it. A reader takes the generation
// before it loads, and tags its entry with it: a reader that loaded old data
// and stores it after the write stores a tag that is already old, and the
// next read reloads. The generation and the entry come back in one MGET.
//
// Lookups are pipelined unless Config.CacheDirect (see newPipe): concurrent
// requests' MGETs share one write and one read on one connection.
//
// Redis trouble turns the cache off for the request (reads go to MySQL); a
// generation bump that fails is retried in the background and, until it
// succeeds, this process serves no cached reads of that tenant.
type readCache struct {
	rdb        redis.UniversalClient
	pipe       *redis.AutoPipeliner // get's MGETs when pipelined (newPipe); nil: through rdb
	pipeClient *redis.Client        // pipe's own client
	closeOnce  sync.Once
	ttl        time.Duration
	log        *slog.Logger

	mu    sync.Mutex
	dirty map[int64]bool // tenants whose generation bump has not reached Redis

	hits, misses prometheus.Counter // of metrics.CacheRequests
	gate         *redisGate
}

const cacheTimeout = 100 * time.Millisecond

func newReadCache(rdb redis.UniversalClient, ttl time.Duration, pipelined bool, log *slog.Logger, m *metrics.Set, gate *redisGate) *readCache {
	rc := &readCache{rdb: rdb, ttl: ttl, log: log, dirty: map[int64]bool{}, gate: gate,
		hits: m.CacheRequests.WithLabelValues("hit"), misses: m.CacheRequests.WithLabelValues("miss")}
	if pipelined && ttl > 0 {
		rc.pipe, rc.pipeClient = newPipe(rdb)
	}
	return rc
}

// newPipe returns the autopipeliner of the cache's lookups, or nil when
// rdb is not a plain *redis.Client. With it, the MGETs of concurrent
// requests go out as one batch, one write and one read on one connection,
// instead of a write and a read each. On a 2-core host that took Redis
// from 25 to 5 µs of CPU per cached read, and iacc from about 70 to 40.
//
// An autopipelined command runs on the pipeliner's context, not its
// caller's, so no caller's deadline bounds it. The pipeliner therefore has
// a client of its own whose timeouts keep a batch within a lookup's budget
// (cacheTimeout): half of it for each of the dial, the connection's
// handshake, the write and the read, one dial attempt and no retry (the
// pipeliner's retries multiply the attempts: one retry made a lookup take 4
// timeouts). It dials with go-redis's own dialer built on those options:
// a copied Dialer would keep the first client's 5 s dial timeout (for TLS
// it ignores the context), and the peek go-redis then makes before using
// a pooled connection is paid once per batch, not per lookup. Nor does it
// take the parent's push notification processor, which go-redis set up for
// the parent (sharing it, the new client fails to register its handlers,
// and would panic with maintenance notifications required). A Redis
// that stops answering fails a batch in 50 ms on an open connection and in
// 100 ms on a new one, as the caller's deadline would; a lookup queued
// behind that batch waits for it first. A failed batch trips the Redis
// gate like a failed lookup: reads go to MySQL for its cool-down.
func newPipe(rdb redis.UniversalClient) (*redis.AutoPipeliner, *redis.Client) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil, nil
	}
	opt := *c.Options()
	opt.MaxRetries, opt.DialerRetries, opt.Dialer = -1, 1, nil
	opt.PushNotificationProcessor = nil // the parent's, set by its init; this client makes its own
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = cacheTimeout/2, cacheTimeout/2, cacheTimeout/2
	opt.PoolSize, opt.MinIdleConns, opt.PipelinePoolSize = 2, 0, 2 // one batch in flight at a time
	own := redis.NewClient(&opt)
	pipe, err := own.AutoPipeline()
	if err != nil { // only for an invalid pipeline configuration; the default is valid
		_ = own.Close()
		return nil, nil
	}
	return pipe, own
}

// close stops the lookups' pipeliner, if any (closing its client does).
// Call it once the app serves no more requests; more calls do nothing.
func (rc *readCache) close() error {
	var err error
	rc.closeOnce.Do(func() {
		if rc.pipeClient != nil {
			err = rc.pipeClient.Close()
		}
	})
	return err
}

func (rc *readCache) hit()  { rc.hits.Inc() }
func (rc *readCache) miss() { rc.misses.Inc() }

func genKey(tenantID int64) string { return "iacc:cache:" + strconv.FormatInt(tenantID, 10) + ":gen" }

// entryKey is where the entry of (tenant, key) is, whatever its generation.
// ("e:" keeps entry keys apart from the generation's key.)
func entryKey(tenantID int64, key string) string {
	return "iacc:cache:" + strconv.FormatInt(tenantID, 10) + ":e:" + key
}

// An entry is stored as its generation, a newline, then the value.
func entryOf(gen string, val []byte) []byte {
	b := make([]byte, 0, len(gen)+1+len(val))
	b = append(b, gen...)
	b = append(b, '\n')
	return append(b, val...)
}

// valueOf is the value of a stored entry if it was made under generation
// gen.
func valueOf(entry, gen string) ([]byte, bool) {
	if len(entry) <= len(gen) || entry[len(gen)] != '\n' || entry[:len(gen)] != gen {
		return nil, false
	}
	return []byte(entry[len(gen)+1:]), true
}

// cacheResult is what get found.
type cacheResult struct {
	val []byte
	gen string // the generation to store a fresh value under; "" when the cache is off
	hit bool
}

// get returns the cached value of (tenant, key).
func (rc *readCache) get(ctx context.Context, tenantID int64, key string) cacheResult {
	if rc.ttl <= 0 || rc.isDirty(tenantID) || !rc.gate.up() {
		return cacheResult{}
	}
	if rc.pipe != nil { // its client's timeouts bound the call (newPipe)
		return rc.found(rc.pipe.MGet(ctx, genKey(tenantID), entryKey(tenantID, key)).Result())
	}
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	return rc.found(rc.rdb.MGet(ctx, genKey(tenantID), entryKey(tenantID, key)).Result())
}

// found reads get's MGET reply: the generation and the entry.
func (rc *readCache) found(res []any, err error) cacheResult {
	if err != nil {
		rc.gate.trip()
		rc.log.Debug("cache lookup failed", "err", err) // the read goes to MySQL
		rc.miss()
		return cacheResult{}
	}
	if len(res) != 2 {
		rc.miss()
		return cacheResult{}
	}
	gen := "0" // no write yet since the generation was last lost
	if g, ok := res[0].(string); ok {
		gen = g
	}
	if entry, ok := res[1].(string); ok {
		if val, current := valueOf(entry, gen); current {
			rc.hit()
			return cacheResult{val: val, gen: gen, hit: true}
		}
	}
	rc.miss()
	return cacheResult{gen: gen}
}

// set stores val, tagged with the generation returned by get.
func (rc *readCache) set(ctx context.Context, tenantID int64, gen, key string, val []byte) {
	if gen == "" || rc.ttl <= 0 || !rc.gate.up() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	if err := rc.rdb.Set(ctx, entryKey(tenantID, key), entryOf(gen, val), rc.ttl).Err(); err != nil {
		rc.gate.trip()
		rc.log.Debug("cache set failed", "err", err)
	}
}

// invalidate moves the tenant to a new generation. Called after a write
// commits and before its response is sent.
func (rc *readCache) invalidate(ctx context.Context, tenantID int64) {
	if rc.ttl <= 0 {
		return
	}
	if !rc.gate.up() { // Redis is down: this process stops serving the tenant's cached reads
		rc.markDirty(tenantID)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheTimeout)
	defer cancel()
	if err := rc.rdb.Incr(ctx, genKey(tenantID)).Err(); err != nil {
		rc.gate.trip()
		rc.markDirty(tenantID)
		rc.log.Warn("cache invalidation failed; cached reads of the tenant are off until it succeeds", "tenant_id", tenantID, "err", err)
	}
}

func (rc *readCache) isDirty(tenantID int64) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.dirty[tenantID]
}

func (rc *readCache) markDirty(tenantID int64) {
	rc.mu.Lock()
	first := len(rc.dirty) == 0
	rc.dirty[tenantID] = true
	rc.mu.Unlock()
	if first {
		go rc.repair()
	}
}

// repair retries the failed generation bumps until Redis takes them.
func (rc *readCache) repair() {
	backoff := 100 * time.Millisecond
	for {
		rc.mu.Lock()
		tenants := make([]int64, 0, len(rc.dirty))
		for t := range rc.dirty {
			tenants = append(tenants, t)
		}
		rc.mu.Unlock()
		if len(tenants) == 0 {
			return
		}
		for _, t := range tenants {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := rc.rdb.Incr(ctx, genKey(t)).Err()
			cancel()
			if err != nil {
				break
			}
			rc.mu.Lock()
			delete(rc.dirty, t)
			rc.mu.Unlock()
		}
		timer := time.NewTimer(backoff)
		<-timer.C
		backoff = min(backoff*2, 5*time.Second)
	}
}
