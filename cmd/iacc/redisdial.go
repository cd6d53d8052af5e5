package main

import (
	"context"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

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
