package api

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iacc/iacc/store"
)

// revocationOverlap is how far back each look at the revoked users reaches
// before the newest revocation already seen: a revoking transaction stamps
// its time before it commits, so one that commits late still shows up.
const revocationOverlap = time.Minute

// revocations knows, for every user whose access tokens were ever revoked,
// the generation a token must carry to be accepted. Requests read it
// without locking or I/O; the process's own revocations enter it at once
// (note), other processes' within one poll (run).
type revocations struct {
	gens atomic.Pointer[map[int64]int64] // user → current token generation

	mu     sync.Mutex // serialises writers
	since  time.Time  // newest revocation seen
	loaded bool       // one full load done
	failed bool       // the last look failed (logged once)
}

func newRevocations() *revocations {
	r := &revocations{}
	r.gens.Store(&map[int64]int64{})
	return r
}

// revoked reports whether a token of generation gen of user uid is revoked.
func (r *revocations) revoked(uid, gen int64) bool {
	return gen < (*r.gens.Load())[uid]
}

// note records that user uid's tokens are now of generation gen.
func (r *revocations) note(uid, gen int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply([]store.TokenRevocation{{UserID: uid, Gen: gen}})
}

// apply merges revs (highest generation wins); r.mu is held.
func (r *revocations) apply(revs []store.TokenRevocation) {
	cur := *r.gens.Load()
	var next map[int64]int64
	for _, rv := range revs {
		if rv.At.After(r.since) {
			r.since = rv.At
		}
		if cur[rv.UserID] >= rv.Gen {
			continue
		}
		if next == nil {
			next = maps.Clone(cur)
		}
		next[rv.UserID] = rv.Gen
	}
	if next != nil {
		r.gens.Store(&next)
	}
}

// refresh reads the revocations since the last look (all of them the first
// time).
func (r *revocations) refresh(ctx context.Context, db *store.DB) error {
	r.mu.Lock()
	since := time.Time{}
	if r.loaded {
		since = r.since.Add(-revocationOverlap)
	}
	r.mu.Unlock()
	revs, err := store.TokenRevocations(ctx, db, since)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply(revs)
	r.loaded = true
	return nil
}

// run refreshes every interval until ctx ends. A failed look is logged
// once, and its recovery too; meanwhile the revocations already known stay
// in force.
func (r *revocations) run(ctx context.Context, db *store.DB, every time.Duration, log *slog.Logger, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, max(every, 2*time.Second))
		err := r.refresh(lctx, db)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !r.failed:
			r.failed = true
			log.Warn("reading revoked access tokens failed: tokens other processes revoke are accepted here until MySQL answers", "err", err)
		case err == nil && r.failed:
			r.failed = false
			log.Info("reading revoked access tokens works again")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
