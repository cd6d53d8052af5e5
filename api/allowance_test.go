package api

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/store/storetest"
)

// countCalls counts the commands a client sends.
type countCalls struct{ n atomic.Int64 }

func (c *countCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *countCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Two processes leasing from one budget never admit more than the budget
// (plus what it refills meanwhile), and lose at most one lease each to
// lapsed units.
func TestAllowancesNeverExceedTheSharedBudget(t *testing.T) {
	t.Parallel()
	rdb := storetest.NewRedis(t)
	ctx := context.Background()
	const perMinute = 2400 // a lease holds at most 10 units
	procs := []*allowances{newAllowances(redis_rate.NewLimiter(rdb)), newAllowances(redis_rate.NewLimiter(rdb))}
	start := time.Now()
	admitted, refusedBy := 0, map[int]bool{}
	for i := 0; len(refusedBy) < 2 && i < 10*perMinute; i++ {
		p := i % 2
		if refusedBy[p] {
			p = 1 - p
		}
		ok, retry, err := procs[p].take(ctx, "k", perMinute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			admitted++
			delete(refusedBy, p)
			continue
		}
		if retry <= 0 {
			t.Fatalf("refused with Retry-After %v", retry)
		}
		refusedBy[p] = true
	}
	refill := int(time.Since(start).Seconds()*perMinute/60) + 1
	if admitted > perMinute+refill {
		t.Errorf("admitted %d with a budget of %d (+%d refilled meanwhile)", admitted, perMinute, refill)
	}
	if admitted < perMinute-2*10 {
		t.Errorf("admitted only %d of a budget of %d: more lost to leases than one per process", admitted, perMinute)
	}
}

// A busy key spends leased units without a round trip each; a key whose
// limit is too low to lease goes to Redis for every unit; leased units
// lapse after leaseTime.
func TestAllowancesLeaseForBusyKeys(t *testing.T) {
	t.Parallel()
	rdb := storetest.NewRedis(t)
	calls := &countCalls{}
	rdb.AddHook(calls)
	ctx := context.Background()
	a := newAllowances(redis_rate.NewLimiter(rdb))
	now := time.Now()
	a.now = func() time.Time { return now }

	take := func(key string, perMinute, n int) int64 {
		t.Helper()
		before := calls.n.Load()
		for i := range n {
			ok, _, err := a.take(ctx, key, perMinute)
			if err != nil || !ok {
				t.Fatalf("%s: take %d = %t, %v", key, i+1, ok, err)
			}
			now = now.Add(100 * time.Microsecond) // 10 k/s
		}
		return calls.n.Load() - before
	}
	if n := take("busy", 10_000_000, 5000); n > 20 {
		t.Errorf("5000 units of a busy key took %d Redis calls; want a few leases", n)
	}
	if n := take("slow", 100, 50); n != 50 {
		t.Errorf("50 units at 100/min took %d Redis calls; want one each", n)
	}
	take("busy", 10_000_000, 1)
	now = now.Add(leaseTime)
	if n := take("busy", 10_000_000, 1); n != 1 {
		t.Errorf("after leaseTime, a unit took %d Redis calls; want 1 (the lease lapsed)", n)
	}
}
