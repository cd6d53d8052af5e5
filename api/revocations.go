package api

import (
	"context"
	"log/slog"
	"maps"
	"slices"
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
// the generation a token must carry to be accepted, and the sessions
// (refresh-token families) revoked within an access token's lifetime.
// Requests read it without locking or I/O; the process's own revocations
// enter it at once (note, noteSession), other processes' within one poll
// (run).
type revocations struct {
	gens     atomic.Pointer[map[int64]int64]      // user → current token generation
	sessions atomic.Pointer[map[string]time.Time] // revoked session → when

	mu        sync.Mutex    // serialises writers
	since     time.Time     // newest user revocation seen
	sessSince time.Time     // newest session revocation seen
	keep      time.Duration // how long a revoked session's tokens can live
	loaded    bool          // one full load done
	failed    bool          // the last look failed (logged once)
}

// newRevocations remembers revoked sessions for keep, the longest an access
// token of theirs can still be accepted.
func newRevocations(keep time.Duration) *revocations {
	r := &revocations{keep: keep}
	r.gens.Store(&map[int64]int64{})
	r.sessions.Store(&map[string]time.Time{})
	return r
}

// sessionRevoked reports whether the session sid was revoked.
func (r *revocations) sessionRevoked(sid string) bool {
	_, ok := (*r.sessions.Load())[sid]
	return ok
}

// noteSession records that session sid was revoked at.
func (r *revocations) noteSession(sid string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applySessions([]store.SessionRevocation{{FamilyID: sid, At: at}}, at)
}

// applySessions merges revs and forgets the sessions revoked more than
// r.keep before now; r.mu is held. The map is copied only when it
// changes: each poll re-reads the last minute's revocations.
func (r *revocations) applySessions(revs []store.SessionRevocation, now time.Time) {
	cur := *r.sessions.Load()
	live := func(at time.Time) bool { return now.Sub(at) <= r.keep }
	changed := slices.ContainsFunc(revs, func(rv store.SessionRevocation) bool {
		_, known := cur[rv.FamilyID]
		return !known && live(rv.At)
	})
	for _, at := range cur {
		changed = changed || !live(at)
	}
	if !changed {
		return
	}
	next := make(map[string]time.Time, len(cur)+len(revs))
	for sid, at := range cur {
		if live(at) {
			next[sid] = at
		}
	}
	for _, rv := range revs {
		if live(rv.At) {
			next[rv.FamilyID] = rv.At
		}
	}
	r.sessions.Store(&next)
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

// refresh reads the revocations since the last look (the first time: every
// user revocation, and the sessions revoked within r.keep).
func (r *revocations) refresh(ctx context.Context, db *store.DB) error {
	now := time.Now()
	r.mu.Lock()
	since, sessSince := time.Time{}, now.Add(-r.keep)
	if r.loaded {
		since = r.since.Add(-revocationOverlap)
		if t := r.sessSince.Add(-revocationOverlap); t.After(sessSince) {
			sessSince = t
		}
	}
	r.mu.Unlock()
	revs, err := store.TokenRevocations(ctx, db, since)
	if err != nil {
		return err
	}
	sess, err := store.SessionRevocations(ctx, db, sessSince)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply(revs)
	r.applySessions(sess, now)
	// The watermarks move with what the database says only, never with
	// the process's own notes (its clock may run ahead of another's).
	for _, rv := range revs {
		if rv.At.After(r.since) {
			r.since = rv.At
		}
	}
	for _, rv := range sess {
		if rv.At.After(r.sessSince) {
			r.sessSince = rv.At
		}
	}
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
