package main

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// redisOptions is how every iacc process connects to Redis: the URL's
// options; poolSize connections (0: go-redis's default); the dialer below;
// and ContextTimeoutEnabled, so that a caller's deadline bounds the
// command's socket writes and reads. Without it go-redis bounds them by
// ReadTimeout and WriteTimeout only (3 s each), and a deadline only bounds
// the wait for a pooled connection: a read cache lookup with a 100 ms
// budget would hold a request for 3 s on a Redis that stopped answering.
func redisOptions(url string, poolSize int) (*redis.Options, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("IACC_REDIS_URL: %w", err)
	}
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	opt.ContextTimeoutEnabled = true
	opt.Dialer = redisDialer(opt)
	return opt, nil
}

// redisDialer dials Redis with go-redis's own dialer (redis.NewDialer), but
// hands go-redis a plaintext connection without its syscall.Conn method.
//
// go-redis peeks at a pooled connection (a recvfrom syscall) each time it
// takes one from the pool, that is before every command; on this kind of
// VM a syscall is costly, and that peek was 6 % of the API's CPU on cached
// reads. go-redis already skips the peek for TLS connections, which do not
// expose the socket either. Without it, a connection the server has closed
// is found when a command fails on it, and go-redis retries the command on
// another connection (MaxRetries): the server closed it before reading the
// command, so the retry does not run it twice.
func redisDialer(opt *redis.Options) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := redis.NewDialer(opt)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if _, exposed := c.(syscall.Conn); err != nil || !exposed {
			return c, err
		}
		return unpeeked{c}, nil
	}
}

// unpeeked exposes only net.Conn's methods.
type unpeeked struct{ net.Conn }
