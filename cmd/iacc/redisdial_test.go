package main

import (
	"context"
	"strconv"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

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
