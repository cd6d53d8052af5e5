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
// Redis trouble turns the cache off for the request (reads go to MySQL); a
// generation bump that fails is retried in the background and, until it
// succeeds, this process serves no cached reads of that tenant.
type readCache struct {
	rdb redis.UniversalClient
	ttl time.Duration
	log *slog.Logger

	mu    sync.Mutex
	dirty map[int64]bool // tenants whose generation bump has not reached Redis

	hits, misses prometheus.Counter // of metrics.CacheRequests
	gate         *redisGate
}

const cacheTimeout = 100 * time.Millisecond

func newReadCache(rdb redis.UniversalClient, ttl time.Duration, log *slog.Logger, m *metrics.Set, gate *redisGate) *readCache {
	return &readCache{rdb: rdb, ttl: ttl, log: log, dirty: map[int64]bool{}, gate: gate,
		hits: m.CacheRequests.WithLabelValues("hit"), misses: m.CacheRequests.WithLabelValues("miss")}
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
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	res, err := rc.rdb.MGet(ctx, genKey(tenantID), entryKey(tenantID, key)).Result()
	if err != nil {
		rc.gate.trip()
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
