package webhook

import (
	"sync"
	"testing"
	"time"
)

// One endpoint never holds more than its in-flight cap of delivery slots,
// whatever the concurrency; other endpoints keep theirs.
func TestInFlightCapPerEndpoint(t *testing.T) {
	h := NewHandler(Config{MaxInFlightPerEndpoint: 3}, nil, nil, nil)
	var mu sync.Mutex
	granted := 0
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if h.acquire(7) {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted != 3 {
		t.Fatalf("granted %d slots, want 3", granted)
	}
	if !h.acquire(8) {
		t.Fatal("another endpoint was starved")
	}
	h.release(7, time.Millisecond)
	if !h.acquire(7) {
		t.Fatal("a released slot was not given again")
	}
	for i := 0; i < 3; i++ {
		h.release(7, time.Millisecond)
	}
	h.release(8, time.Millisecond)
	if len(h.inFlight) != 0 {
		t.Errorf("slots left behind: %v", h.inFlight)
	}
}

// A delivery turned away by a full endpoint comes back about when a slot
// frees: after about as long as that endpoint's deliveries hold a slot, so
// a slow endpoint's waiting deliveries do not each run many times per freed
// slot. An endpoint with no history, or a fast one, waits 225–675 ms.
func TestWaitForSlotFollowsTheEndpointsHoldTime(t *testing.T) {
	h := NewHandler(Config{MaxInFlightPerEndpoint: 1}, nil, nil, nil)
	within := func(what string, endpoint int64, lo, hi time.Duration) {
		t.Helper()
		for range 200 {
			if w := h.waitForSlot(endpoint); w < lo || w > hi {
				t.Fatalf("%s: waits %s, want %s–%s", what, w, lo, hi)
			}
		}
	}
	within("no history", 1, 225*time.Millisecond, 675*time.Millisecond)
	for _, held := range []time.Duration{5 * time.Second, 5 * time.Second} {
		if !h.acquire(2) {
			t.Fatal("no slot")
		}
		h.release(2, held)
	}
	within("5 s per delivery", 2, 2500*time.Millisecond, 7500*time.Millisecond)
	if !h.acquire(3) {
		t.Fatal("no slot")
	}
	h.release(3, 10*time.Millisecond)
	within("a fast endpoint", 3, 225*time.Millisecond, 675*time.Millisecond)
	if !h.acquire(4) {
		t.Fatal("no slot")
	}
	h.release(4, 10*time.Minute)
	within("capped", 4, 15*time.Second, 45*time.Second)
	// The average moves by an eighth of each new hold time.
	if !h.acquire(2) {
		t.Fatal("no slot")
	}
	h.release(2, 13*time.Second)
	if got := h.holds[2]; got != 6*time.Second {
		t.Errorf("average after 5 s, 5 s, 13 s: %s, want 6s", got)
	}
}
