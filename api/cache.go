package api

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/metrics"
)

// readCache caches JSON responses of reads in Redis, keyed by a per-tenant
// generation number. Every write of a tenant increments its generation
// before the write's response is sent, so a read after a write never finds
// an entry made before it: old entries are simply never asked for again and
// expire. (A reader that loaded old data and stores it after the write lands
// under the old generation, where nobody looks.)
//
// Redis trouble turns the cache off for the request (reads go to MySQL); a
// generation bump that fails is retried in the background and, until it
// succeeds, this process serves no cached reads of that tenant.
type readCache struct {
	rdb redis.UniversalClient
	ttl time.Duration
	log *slog.Logger

	mu    sync.Mutex
	dirty map[int64]bool // tenants whose generation bump has not reached Redis

	metrics *metrics.Set
	gate    *redisGate
}

const cacheTimeout = 100 * time.Millisecond

func newReadCache(rdb redis.UniversalClient, ttl time.Duration, log *slog.Logger, m *metrics.Set, gate *redisGate) *readCache {
	return &readCache{rdb: rdb, ttl: ttl, log: log, dirty: map[int64]bool{}, metrics: m, gate: gate}
}

func (rc *readCache) hit()  { rc.metrics.CacheRequests.WithLabelValues("hit").Inc() }
func (rc *readCache) miss() { rc.metrics.CacheRequests.WithLabelValues("miss").Inc() }

func genKey(tenantID int64) string { return "iacc:cache:" + strconv.FormatInt(tenantID, 10) + ":gen" }

// getScript reads the tenant's generation and the entry under it in one
// round trip; it returns {generation, value or false}.
var getScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', ARGV[1] .. g .. ARGV[2])}`)

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
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	prefix := "iacc:cache:" + strconv.FormatInt(tenantID, 10) + ":"
	res, err := getScript.Run(ctx, rc.rdb, []string{genKey(tenantID)}, prefix, ":"+key).Slice()
	if err != nil {
		rc.gate.trip()
		rc.miss()
		return cacheResult{}
	}
	if len(res) != 2 {
		rc.miss()
		return cacheResult{}
	}
	gen, _ := res[0].(string)
	if s, isStr := res[1].(string); isStr {
		rc.hit()
		return cacheResult{val: []byte(s), gen: gen, hit: true}
	}
	rc.miss()
	return cacheResult{gen: gen}
}

// set stores val under the generation returned by get.
func (rc *readCache) set(ctx context.Context, tenantID int64, gen, key string, val []byte) {
	if gen == "" || rc.ttl <= 0 || !rc.gate.up() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	k := "iacc:cache:" + strconv.FormatInt(tenantID, 10) + ":" + gen + ":" + key
	if err := rc.rdb.Set(ctx, k, val, rc.ttl).Err(); err != nil {
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
