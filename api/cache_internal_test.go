package api

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store/storetest"
)

// A reader that took the generation before a write, and stores what it
// loaded after the write, must not have that served: not when it stores
// into an empty slot, and not when it overwrites an entry made after the
// write. Every later reader reloads instead.
func TestCacheNeverServesAnEntryMadeBeforeAWrite(t *testing.T) {
	rdb := storetest.NewRedis(t)
	rc := newReadCache(rdb.Client, time.Minute, true, slog.Default(), metrics.New(prometheus.NewRegistry()), newRedisGate(time.Second))
	t.Cleanup(func() {
		if err := rc.close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	const tenant, other, key = 7, 8, "po:1:all"

	slow := rc.get(ctx, tenant, key) // a reader starts loading
	if slow.hit || slow.gen == "" {
		t.Fatalf("first get = %+v; want a miss with a generation", slow)
	}
	rc.invalidate(ctx, tenant) // a write commits meanwhile
	rc.set(ctx, tenant, slow.gen, key, []byte(`{"v":"old"}`))
	r := rc.get(ctx, tenant, key)
	if r.hit {
		t.Fatalf("get after the write = hit %q; want a miss: the entry was loaded before the write", r.val)
	}
	if r.gen == slow.gen {
		t.Fatalf("generation after the write = %q, as before it", r.gen)
	}

	rc.set(ctx, tenant, r.gen, key, []byte(`{"v":"new"}`))
	if r := rc.get(ctx, tenant, key); !r.hit || string(r.val) != `{"v":"new"}` {
		t.Fatalf("get of the fresh entry = %+v; want a hit with the new value", r)
	}
	rc.set(ctx, tenant, slow.gen, key, []byte(`{"v":"old"}`)) // the slow reader again, later
	if r := rc.get(ctx, tenant, key); r.hit {
		t.Fatalf("get after an old entry overwrote the fresh one = hit %q; want a miss", r.val)
	}

	// Another tenant's entry under the same key is its own.
	o := rc.get(ctx, other, key)
	rc.set(ctx, other, o.gen, key, []byte(`{"v":"other"}`))
	if r := rc.get(ctx, other, key); !r.hit || string(r.val) != `{"v":"other"}` {
		t.Fatalf("other tenant's get = %+v; want its own entry", r)
	}
	if r := rc.get(ctx, tenant, key); r.hit {
		t.Fatalf("tenant's get = hit %q after another tenant's set; want a miss", r.val)
	}
}

// valueOf takes an entry only under the generation it was made in.
func TestCacheEntryTag(t *testing.T) {
	e := string(entryOf("12", []byte(`{"a":1}`)))
	for _, tc := range []struct {
		entry, gen string
		want       string
		ok         bool
	}{
		{e, "12", `{"a":1}`, true},
		{e, "1", "", false},   // a prefix of the tag
		{e, "123", "", false}, // longer than the tag
		{e, "13", "", false},
		{string(entryOf("4", nil)), "4", "", true},
		{"12", "12", "", false}, // no separator
		{"", "0", "", false},
	} {
		v, ok := valueOf(tc.entry, tc.gen)
		if ok != tc.ok || string(v) != tc.want {
			t.Errorf("valueOf(%q, %q) = %q, %v; want %q, %v", tc.entry, tc.gen, v, ok, tc.want, tc.ok)
		}
	}
}

// The lookups' pipeliner has a client of its own that bounds each step of a
// batch by half a lookup's budget, dials once and never retries, and dials
// with go-redis's dialer on those options, not with its parent's (whose
// timeout is the parent's): nothing else bounds a pipelined lookup.
func TestCachePipeBoundsItsOwnClient(t *testing.T) {
	reserved := storetest.NewRedis(t)
	parent := redis.NewClient(&redis.Options{Addr: storetest.RedisAddr(), DB: reserved.DB,
		Dialer: func(ctx context.Context, _, _ string) (net.Conn, error) { // a dial that never completes
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	t.Cleanup(func() { _ = parent.Close() })
	pipe, own := newPipe(parent)
	if pipe == nil {
		t.Fatal("no pipeliner for a *redis.Client")
	}
	t.Cleanup(func() { _ = own.Close() })
	o := own.Options()
	half := cacheTimeout / 2
	if o.DialTimeout != half || o.ReadTimeout != half || o.WriteTimeout != half || o.DialerRetries != 1 || o.MaxRetries != 0 {
		t.Errorf("pipeliner client: dial %s, read %s, write %s, dial attempts %d, retries %d; want %s each, 1 and 0",
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.DialerRetries, o.MaxRetries, half)
	}
	if o.PushNotificationProcessor == parent.Options().PushNotificationProcessor {
		t.Error("the pipeliner's client shares its parent's push notification processor (go-redis then fails to register its handlers)")
	}
	if err := pipe.MGet(context.Background(), "iacc:test:a", "iacc:test:b").Err(); err != nil {
		t.Errorf("pipelined MGET: %v (a dialer copied from the parent never connects)", err)
	}
}
