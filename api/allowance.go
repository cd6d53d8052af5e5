package api

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// allowances spends rate-limit units locally, from leases taken out of the
// keys' GCRA budgets in Redis (redis_rate, shared by every API process).
//
// A key busy on this process leases the units it is likely to spend in the
// next leaseTime (its recent rate, at most leaseTime's share of its
// limit) in one round trip, and spends them without Redis; a key used now
// and then leases one unit per request, as without leases. Units are taken
// from the shared budget before they are spent, so a key never gets more
// than its limit across processes. Units left when a lease ends lapse: a
// key that stops, or whose traffic is spread over several processes, can
// be refused up to one lease per process early.
type allowances struct {
	limiter *redis_rate.Limiter
	now     func() time.Time

	mu   sync.Mutex
	keys map[string]*allowance
}

// leaseTime is how long leased units stay spendable.
const leaseTime = 250 * time.Millisecond

// maxAllowanceKeys bounds the map: past it, lapsed keys are swept.
const maxAllowanceKeys = 4096

type allowance struct {
	units    int       // leased, not spent yet
	expires  time.Time // when the units lapse
	leasedAt time.Time
	spent    int  // units spent since leasedAt
	leasing  bool // a lease is being taken
}

func newAllowances(l *redis_rate.Limiter) *allowances {
	return &allowances{limiter: l, now: time.Now, keys: map[string]*allowance{}}
}

// take spends one unit of key's budget of perMinute. ok false: the budget
// is spent, retry after the duration. An error means Redis did not answer
// within limitTimeout (the bound is set here, only when Redis is asked, so
// that a unit spent from a lease costs no timer).
func (a *allowances) take(ctx context.Context, key string, perMinute int) (ok bool, retry time.Duration, err error) {
	now := a.now()
	a.mu.Lock()
	al := a.keys[key]
	if al == nil {
		if len(a.keys) >= maxAllowanceKeys {
			a.sweep(now)
		}
		al = &allowance{}
		a.keys[key] = al
	}
	if al.units > 0 && now.Before(al.expires) {
		al.units--
		al.spent++
		a.mu.Unlock()
		return true, 0, nil
	}
	if al.leasing {
		// Another request is leasing: take this one unit on its own.
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, limitTimeout)
		defer cancel()
		res, err := a.limiter.Allow(ctx, key, redis_rate.PerMinute(perMinute))
		if err != nil {
			return false, 0, err
		}
		return res.Allowed > 0, res.RetryAfter, nil
	}
	n := leaseSize(al, now, perMinute)
	al.leasing = true
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	res, err := a.limiter.AllowAtMost(ctx, key, redis_rate.PerMinute(perMinute), n)

	a.mu.Lock()
	defer a.mu.Unlock()
	al.leasing = false
	if err != nil {
		return false, 0, err
	}
	if res.Allowed == 0 {
		return false, res.RetryAfter, nil
	}
	al.units, al.expires, al.leasedAt, al.spent = res.Allowed-1, now.Add(leaseTime), now, 1
	return true, 0, nil
}

// leaseSize is the units key is likely to spend in the next leaseTime: its
// rate since its last lease, between 1 and leaseTime's share of perMinute.
func leaseSize(al *allowance, now time.Time, perMinute int) int {
	most := int(float64(perMinute) * leaseTime.Seconds() / 60)
	if most <= 1 || al.leasedAt.IsZero() {
		return 1
	}
	elapsed := now.Sub(al.leasedAt)
	if elapsed < leaseTime/8 {
		elapsed = leaseTime / 8
	}
	n := int(math.Ceil(float64(al.spent) * leaseTime.Seconds() / elapsed.Seconds()))
	return min(max(n, 1), most)
}

// sweep drops the keys whose units have lapsed and are not leasing.
func (a *allowances) sweep(now time.Time) {
	for k, al := range a.keys {
		if !al.leasing && !now.Before(al.expires) {
			delete(a.keys, k)
		}
	}
}
