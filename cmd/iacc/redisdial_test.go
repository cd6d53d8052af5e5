package main

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/faults"
	"github.com/iacc/iacc/store/storetest"
)

func TestRedisDialerHidesTheSocketAndWorks(t *testing.T) {
	opt := &redis.Options{Addr: storetest.RedisAddr(), MaxRetries: 1}
	dial := redisDialer(opt)
	conn, err := dial(context.Background(), "tcp", opt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(syscall.Conn); ok {
		t.Fatal("the dialed connection exposes syscall.Conn: go-redis would peek at it before every command")
	}

	// A client on it works, also after Redis closed one of its connections.
	opt.Dialer = dial
	opt.PoolSize = 1
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	id, err := rdb.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	ctl := redis.NewClient(&redis.Options{Addr: opt.Addr})
	defer ctl.Close()
	if err := ctl.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after the server closed the pooled connection: %v", err)
	}
}

// A caller's deadline bounds a command on a Redis that stopped answering (a
// partition: the connection stays open and nothing comes back), not
// go-redis's ReadTimeout of 3 s.
func TestRedisOptionsHonourTheCallersDeadline(t *testing.T) {
	reserved := storetest.NewRedis(t)
	proxy := newToxiproxy(t, storetest.RedisAddr())
	opt, err := redisOptions(fmt.Sprintf("redis://%s/%d", proxy.Listen, reserved.DB), 4)
	if err != nil {
		t.Fatal(err)
	}
	if opt.PoolSize != 4 || opt.Dialer == nil {
		t.Fatalf("options: pool %d, dialer set %v; want 4 and iacc's dialer", opt.PoolSize, opt.Dialer != nil)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := faults.Blackhole(proxy); err != nil {
		t.Fatal(err)
	}
	const budget = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	err = rdb.Get(ctx, "iacc:test:deadline").Err()
	took := time.Since(start)
	if err == nil {
		t.Fatal("GET through a partition succeeded")
	}
	if took > time.Second {
		t.Errorf("GET with a %s deadline took %s (%v): the deadline did not bound the read (ReadTimeout %s)", budget, took, err, opt.ReadTimeout)
	}
}
