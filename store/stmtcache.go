package store

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/go-sql-driver/mysql"
)

// Server-side prepared statements, kept per connection.
//
// With interpolated parameters a statement is one round trip, but MariaDB
// parses and plans its text on every run, and results come back as text.
// A statement prepared once on a connection and executed again skips the
// parse and uses the binary protocol: on this kind of machine a point
// SELECT costs MariaDB about 40 % less CPU that way, and a pool of 20
// connections runs about 55 % more of them per second
// (docs/architecture.md, "Tuning notes").
//
// A connection prepares a statement the second time it runs its text with
// parameters, so that one-off texts (a batch UPDATE … IN (?, ?, …) whose
// length varies) keep the single round trip of interpolation. It keeps at
// most stmtCacheSize statements; MariaDB's max_prepared_stmt_count (16,382
// by default, for the whole server) bounds the total. A text the server
// refuses to prepare, that limit included, runs interpolated.
const (
	stmtCacheSize = 64
	stmtSeenSize  = 256
)

// mysqlConn is what go-sql-driver's connection implements and database/sql
// uses; cachingConn forwards all of it.
type mysqlConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

type cachingConnector struct {
	driver.Connector
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	mc, ok := conn.(mysqlConn)
	if !ok {
		return conn, nil
	}
	return &cachingConn{mysqlConn: mc, stmts: map[string]preparedStmt{}, seen: map[string]bool{}}, nil
}

// preparedStmt is what go-sql-driver's statement implements.
type preparedStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachingConn is used by one goroutine at a time (database/sql's rule for a
// driver.Conn), so its maps need no lock. Closing it needs nothing of its
// own: the server frees a connection's statements when it ends.
type cachingConn struct {
	mysqlConn
	stmts map[string]preparedStmt
	// seen holds texts run once (false) and texts the server would not
	// prepare (true).
	seen map[string]bool
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		s, err := c.prepared(ctx, query)
		if err != nil {
			return nil, err
		}
		if s != nil {
			return s.ExecContext(ctx, args)
		}
	}
	return c.mysqlConn.ExecContext(ctx, query, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) > 0 {
		s, err := c.prepared(ctx, query)
		if err != nil {
			return nil, err
		}
		if s != nil {
			return s.QueryContext(ctx, args)
		}
	}
	return c.mysqlConn.QueryContext(ctx, query, args)
}

// prepared returns the connection's statement for query, preparing it if
// the text has run before; nil means: run it interpolated.
func (c *cachingConn) prepared(ctx context.Context, query string) (preparedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	refused, ok := c.seen[query]
	if !ok {
		if len(c.seen) >= stmtSeenSize {
			clear(c.seen)
		}
		c.seen[query] = false
		return nil, nil
	}
	if refused {
		return nil, nil
	}
	st, err := c.mysqlConn.PrepareContext(ctx, query)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		// Not preparable (ER_UNSUPPORTED_PS) or no room on the server
		// (ER_MAX_PREPARED_STMT_COUNT_REACHED): the connection is fine.
		c.seen[query] = true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, ok := st.(preparedStmt)
	if !ok {
		_ = st.Close()
		c.seen[query] = true
		return nil, nil
	}
	if len(c.stmts) >= stmtCacheSize {
		for q, old := range c.stmts {
			delete(c.stmts, q)
			if err := old.Close(); err != nil {
				_ = s.Close()
				return nil, err
			}
			break
		}
	}
	c.stmts[query] = s
	delete(c.seen, query)
	return s, nil
}
