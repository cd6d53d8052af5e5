package scheduler_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/scheduler"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
)

func insertEvents(t *testing.T, db *store.DB, tenantID int64, n int) []int64 {
	t.Helper()
	ids := make([]int64, 0, n)
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		for i := 0; i < n; i++ {
			ev := store.Event{TenantID: tenantID, Type: "test.event", AggregateType: "test", AggregateID: int64(i + 1), Payload: json.RawMessage(`{}`)}
			if err := store.InsertEvent(context.Background(), tx, &ev); err != nil {
				return err
			}
			ids = append(ids, ev.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Two relays draining the same 500 pending events at once publish each
// exactly once: SKIP LOCKED hands every row to one relay only.
func TestTwoRelaysPublishEachEventExactlyOnce(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ten := storetest.Tenant(t, db, "relay")
	ids := insertEvents(t, db, ten.ID, 500)

	ctx := context.Background()
	relays := make([]*scheduler.Relay, 2)
	var wg sync.WaitGroup
	for i := range relays {
		client := asynq.NewClientFromRedisClient(rdb.Client)
		relays[i] = scheduler.NewRelay(scheduler.RelayConfig{Batch: 20}, db, client, nil, nil)
		wg.Add(1)
		go func(r *scheduler.Relay) {
			defer wg.Done()
			for {
				n, err := r.RelayOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}(relays[i])
	}
	wg.Wait()

	var published, dups int64
	for i, r := range relays {
		st := r.Stats()
		t.Logf("relay %d published %d, duplicates %d", i, st.Published, st.Duplicates)
		if st.Published == 0 {
			t.Errorf("relay %d published nothing: the two did not run concurrently", i)
		}
		published += st.Published
		dups += st.Duplicates
	}
	if published != 500 || dups != 0 {
		t.Errorf("published %d with %d duplicates; want 500 and 0", published, dups)
	}
	var unpublished int
	if err := db.QueryRow(`SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL`).Scan(&unpublished); err != nil {
		t.Fatal(err)
	}
	if unpublished != 0 {
		t.Errorf("%d events left unpublished", unpublished)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb.Client)
	info, err := insp.GetQueueInfo(tasks.QueueCritical)
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != 500 {
		t.Errorf("queue holds %d pending tasks, want 500", info.Pending)
	}
	for _, id := range []int64{ids[0], ids[249], ids[499]} {
		ti, err := insp.GetTaskInfo(tasks.QueueCritical, tasks.EventTaskID(id))
		if err != nil {
			t.Errorf("task of event %d: %v", id, err)
			continue
		}
		if ti.Type != (tasks.EventDispatch{}).Kind() {
			t.Errorf("task of event %d has type %s", id, ti.Type)
		}
	}
}

// An event already published (its task is in Redis) and published again by
// the relay is absorbed by the TaskID: still one task.
func TestRelayRepublishIsNoOp(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ten := storetest.Tenant(t, db, "relay")
	ids := insertEvents(t, db, ten.ID, 3)
	client := asynq.NewClientFromRedisClient(rdb.Client)
	if _, err := tasks.PublishEvent(context.Background(), client, ids[1]); err != nil {
		t.Fatal(err)
	}
	r := scheduler.NewRelay(scheduler.RelayConfig{}, db, client, nil, nil)
	if n, err := r.RelayOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("relay: n=%d err=%v", n, err)
	}
	if st := r.Stats(); st.Published != 2 || st.Duplicates != 1 {
		t.Errorf("stats = %+v, want 2 published and 1 duplicate", st)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb.Client).GetQueueInfo(tasks.QueueCritical)
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != 3 {
		t.Errorf("pending = %d, want 3", info.Pending)
	}
}

// The relay leaves fresh events to the writer's fast path during the grace
// period, then takes them.
func TestRelayGrace(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ten := storetest.Tenant(t, db, "relay")
	insertEvents(t, db, ten.ID, 2)
	client := asynq.NewClientFromRedisClient(rdb.Client)
	r := scheduler.NewRelay(scheduler.RelayConfig{Grace: time.Hour}, db, client, nil, nil)
	if n, err := r.RelayOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("relay within grace: n=%d err=%v, want 0", n, err)
	}
	r = scheduler.NewRelay(scheduler.RelayConfig{Grace: 0}, db, client, nil, nil)
	if n, err := r.RelayOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("relay after grace: n=%d err=%v, want 2", n, err)
	}
}

// With Redis unreachable the relay reports an error and leaves the events
// unpublished for the next round.
func TestRelayWithRedisDownKeepsEvents(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "relay")
	insertEvents(t, db, ten.ID, 2)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	r := scheduler.NewRelay(scheduler.RelayConfig{PublishTimeout: 500 * time.Millisecond}, db, client, nil, nil)
	if n, err := r.RelayOnce(context.Background()); err == nil || n != 0 {
		t.Fatalf("relay with Redis down: n=%d err=%v; want an error", n, err)
	}
	var unpublished, attempts int
	if err := db.QueryRow(`SELECT COUNT(*), SUM(publish_attempts) FROM outbox_events WHERE published_at IS NULL`).Scan(&unpublished, &attempts); err != nil {
		t.Fatal(err)
	}
	if unpublished != 2 || attempts != 1 {
		t.Errorf("unpublished=%d attempts=%d, want 2 and 1 (the relay stops at the first failure)", unpublished, attempts)
	}
}

// A relay round whose publish hangs (Redis accepts but never answers) holds
// its transaction for the publish timeout; meanwhile new events (an order's
// insert) must not wait for it. Under REPEATABLE READ the claim's gap lock
// blocked them for the whole round.
func TestRelayRoundDoesNotBlockNewEvents(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "relay")
	insertEvents(t, db, ten.ID, 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		var once sync.Once
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c) // read nothing, answer nothing
			heldMu.Unlock()
			once.Do(func() { close(accepted) })
		}
	}()
	defer func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	}()
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: ln.Addr().String()})
	defer client.Close()
	r := scheduler.NewRelay(scheduler.RelayConfig{PublishTimeout: 5 * time.Second}, db, client, nil, nil)
	relayDone := make(chan error, 1)
	go func() {
		_, err := r.RelayOnce(context.Background())
		relayDone <- err
	}()
	select {
	case <-accepted: // the events are claimed and the relay is publishing
	case err := <-relayDone:
		t.Fatalf("relay round ended before publishing: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the relay never tried to publish")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		ev := store.Event{TenantID: ten.ID, Type: "test.event", AggregateType: "test", AggregateID: 99, Payload: json.RawMessage(`{}`)}
		return store.InsertEvent(ctx, tx, &ev)
	})
	if err != nil {
		t.Fatalf("inserting an event while a relay round publishes: %v", err)
	}
	select {
	case err := <-relayDone:
		t.Fatalf("the relay round ended (%v) before the insert could be checked against it", err)
	default: // the insert went through while the round still held its transaction
	}
	if err := <-relayDone; err == nil {
		t.Error("a relay round against a Redis that never answers reported no error")
	}
}
