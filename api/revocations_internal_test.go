package api

import (
	"testing"
	"time"

	"github.com/iacc/iacc/store"
)

// Revoked sessions are kept only as long as their access tokens can live,
// and a poll that brings nothing new leaves the map as it is (no copy).
func TestRevokedSessionsAreKeptForATokensLifetime(t *testing.T) {
	r := newRevocations(time.Hour)
	now := time.Now()
	revs := []store.SessionRevocation{{FamilyID: "old", At: now.Add(-2 * time.Hour)}, {FamilyID: "new", At: now.Add(-time.Minute)}}
	r.applySessions(revs, now)
	if r.sessionRevoked("old") || !r.sessionRevoked("new") {
		t.Fatalf("after the first poll: %v", *r.sessions.Load())
	}
	before := r.sessions.Load()
	r.applySessions(revs, now.Add(time.Second)) // the same rows again
	if r.sessions.Load() != before {
		t.Error("a poll with nothing new copied the map")
	}
	r.applySessions(nil, now.Add(time.Hour))
	if r.sessionRevoked("new") || len(*r.sessions.Load()) != 0 {
		t.Errorf("a session revoked over an hour ago is still kept: %v", *r.sessions.Load())
	}
	r.noteSession("mine", now)
	if !r.sessionRevoked("mine") || !r.sessSince.IsZero() {
		t.Errorf("a noted session: revoked %t, watermark %v (want it untouched)", r.sessionRevoked("mine"), r.sessSince)
	}
}
