package api

import (
	"sync/atomic"
	"time"
)

// redisGate is a small circuit breaker shared by everything the API does in
// Redis besides the queue itself (rate limits, the read cache, the
// fast-path publish): after a failure, Redis is left alone for a cool-down,
// so that with Redis down each request costs nothing extra instead of a
// timeout per Redis call. Reads then come from MySQL, limits fail open, and
// events wait in the outbox for the relay.
type redisGate struct {
	downUntil atomic.Int64 // unix nanos
	coolDown  time.Duration
}

func newRedisGate(coolDown time.Duration) *redisGate {
	return &redisGate{coolDown: coolDown}
}

// up reports whether Redis may be tried now.
func (g *redisGate) up() bool { return time.Now().UnixNano() >= g.downUntil.Load() }

// trip records a failure: Redis is skipped for the cool-down.
func (g *redisGate) trip() { g.downUntil.Store(time.Now().Add(g.coolDown).UnixNano()) }
