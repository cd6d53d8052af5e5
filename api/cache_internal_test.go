package api

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
