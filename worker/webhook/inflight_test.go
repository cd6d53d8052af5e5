package webhook

import (
	"sync"
	"testing"
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
	h.release(7)
	if !h.acquire(7) {
		t.Fatal("a released slot was not given again")
	}
	for i := 0; i < 3; i++ {
		h.release(7)
	}
	h.release(8)
	if len(h.inFlight) != 0 {
		t.Errorf("slots left behind: %v", h.inFlight)
	}
}
