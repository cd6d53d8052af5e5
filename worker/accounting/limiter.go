package accounting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter keeps the requests of each tenant under the partner's limit. It is
// a sliding-window log in Redis, shared by every worker process: a request
// may go when fewer than PerSecond requests of the tenant went in the last
// window (one second plus Headroom). So any one second at the partner holds
// at most PerSecond requests, even when network delays vary by up to
// Headroom; bursts up to the limit go at once.
//
// (A GCRA limiter such as redis_rate lets through up to rate+burst-1
// requests in a rolling second, so it must either exceed the limit or space
// requests evenly; spaced requests starve when asynq hands back retried
// tasks in whole-second batches.)
type Limiter struct {
	rdb       redis.UniversalClient
	perSecond int
	window    time.Duration
}

// Headroom lengthens the window beyond one second to absorb network jitter
// between the limiter's decision and the partner's clock.
const Headroom = 100 * time.Millisecond

// NewLimiter limits each tenant to perSecond requests per second
// (IACC_ACCOUNTING_RATE_PER_SECOND); perSecond <= 0 sets no limit, but a
// tenant is still paused after a 429. It returns nil when rdb is nil; a nil
// *Limiter allows everything.
func NewLimiter(rdb redis.UniversalClient, perSecond int) *Limiter {
	if rdb == nil {
		return nil
	}
	return &Limiter{rdb: rdb, perSecond: max(perSecond, 0), window: time.Second + Headroom}
}

// PerSecond is the configured limit (0 for a nil limiter).
func (l *Limiter) PerSecond() int {
	if l == nil {
		return 0
	}
	return l.perSecond
}

func rateKey(tenantID int64) string {
	return "iacc:accounting:rate:" + strconv.FormatInt(tenantID, 10)
}

func pauseKey(tenantID int64) string {
	return "iacc:accounting:pause:" + strconv.FormatInt(tenantID, 10)
}

// allowScript: KEYS = rate log, pause key; ARGV = limit, window µs, member.
// Returns 0 (allowed, recorded) or the µs to wait. Time is Redis's, so all
// workers share one clock.
var allowScript = redis.NewScript(`
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then
  return pause * 1000
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then
  wait = 1
end
return wait
`)

// Allow takes one request of the tenant's budget, or says how long to wait
// (0 means go). While the tenant is paused after a 429, everything waits
// for the pause to end.
func (l *Limiter) Allow(ctx context.Context, tenantID int64) (time.Duration, error) {
	if l == nil {
		return 0, nil
	}
	if l.perSecond == 0 {
		pause, err := l.rdb.PTTL(ctx, pauseKey(tenantID)).Result()
		if err != nil {
			return 0, fmt.Errorf("accounting rate limiter: %w", err)
		}
		return max(pause, 0), nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	us, err := allowScript.Run(ctx, l.rdb, []string{rateKey(tenantID), pauseKey(tenantID)},
		l.perSecond, l.window.Microseconds(), hex.EncodeToString(b[:])).Int64()
	if err != nil {
		return 0, fmt.Errorf("accounting rate limiter: %w", err)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// Pause holds every request of the tenant for d (the partner answered 429
// with Retry-After: the other tasks of the tenant would get 429 too).
func (l *Limiter) Pause(ctx context.Context, tenantID int64, d time.Duration) error {
	if l == nil || d < time.Millisecond {
		return nil
	}
	if err := l.rdb.Set(ctx, pauseKey(tenantID), 1, d).Err(); err != nil {
		return fmt.Errorf("pause accounting requests of tenant %d: %w", tenantID, err)
	}
	return nil
}
