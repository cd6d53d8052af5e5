package pdf

import (
	"context"
	"sync"
	"testing"

	"github.com/iacc/iacc/store"
)

// Checks that arrive while a query runs go together in the next query, and
// each gets its own answer.
func TestExistenceBatchesChecksThatArriveDuringAQuery(t *testing.T) {
	called := make(chan []store.DocKey, 4)
	release := make(chan struct{})
	e := &existence{query: func(_ context.Context, keys []store.DocKey) ([]bool, error) {
		called <- keys
		<-release
		out := make([]bool, len(keys))
		for i, k := range keys {
			out[i] = k.SubjectID%2 == 0
		}
		return out, nil
	}}
	var queued sync.WaitGroup
	e.queued = queued.Done

	ctx := context.Background()
	type answer struct {
		subject int64
		found   bool
		err     error
	}
	answers := make(chan answer, 6)
	check := func(s int64) {
		found, err := e.exists(ctx, store.DocKey{TenantID: 1, Kind: store.DocPurchaseOrder, SubjectID: s, Version: 1})
		answers <- answer{s, found, err}
	}
	queued.Add(1)
	go check(1)
	if first := <-called; len(first) != 1 {
		t.Fatalf("first query asked for %d keys, want 1", len(first))
	}
	queued.Wait()
	queued.Add(5)
	for s := int64(2); s <= 6; s++ {
		go check(s)
	}
	queued.Wait() // all five wait behind the running query
	close(release)
	if second := <-called; len(second) != 5 {
		t.Fatalf("second query asked for %d keys, want the 5 that arrived meanwhile", len(second))
	}
	for range 6 {
		a := <-answers
		if a.err != nil || a.found != (a.subject%2 == 0) {
			t.Errorf("subject %d: found %t, err %v", a.subject, a.found, a.err)
		}
	}
	select {
	case keys := <-called:
		t.Errorf("a third query for %v", keys)
	default:
	}
}
