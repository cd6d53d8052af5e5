package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/iacc/iacc/store/storetest"
)

// sessionCounter reads one of the connection's own status counters.
func sessionCounter(t *testing.T, conn *sql.Conn, name string) int {
	t.Helper()
	var n string
	var v int
	if err := conn.QueryRowContext(context.Background(), "SHOW SESSION STATUS LIKE '"+name+"'").Scan(&n, &v); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return v
}

// pinnedConn is one connection of a fresh test database, closed at the end
// of the test: a connection's prepared statements are its own.
func pinnedConn(t *testing.T) *sql.Conn {
	t.Helper()
	conn, err := storetest.NewDB(t).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestStatementsRunAgainArePreparedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pinnedConn(t)

	prepares, executes := sessionCounter(t, conn, "Com_stmt_prepare"), sessionCounter(t, conn, "Com_stmt_execute")
	for i := range 4 {
		var got int
		if err := conn.QueryRowContext(ctx, "SELECT ? + 1", i).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != i+1 {
			t.Fatalf("SELECT %d + 1 = %d", i, got)
		}
	}
	// The first run is interpolated, the second prepares, the rest reuse.
	if n := sessionCounter(t, conn, "Com_stmt_prepare") - prepares; n != 1 {
		t.Errorf("%d prepares for one text run 4 times, want 1", n)
	}
	if n := sessionCounter(t, conn, "Com_stmt_execute") - executes; n != 3 {
		t.Errorf("%d prepared executions, want 3", n)
	}

	// A transaction on the connection uses the same statements.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	if err := tx.QueryRowContext(ctx, "SELECT ? + 1", 41).Scan(&got); err != nil || got != 42 {
		t.Fatalf("in a transaction: %d, %v", got, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := sessionCounter(t, conn, "Com_stmt_prepare") - prepares; n != 1 {
		t.Errorf("%d prepares after the transaction, want still 1", n)
	}
}

func TestStatementsTheServerWillNotPrepareRunInterpolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pinnedConn(t)
	prepares := sessionCounter(t, conn, "Com_stmt_prepare")
	// MariaDB takes no placeholder in SHOW … LIKE: the prepare fails, and the
	// interpolated text runs, then and afterwards.
	for i := range 4 {
		var table string
		if err := conn.QueryRowContext(ctx, "SHOW TABLES LIKE ?", "vendors").Scan(&table); err != nil || table != "vendors" {
			t.Fatalf("run %d: %q, %v", i+1, table, err)
		}
	}
	if n := sessionCounter(t, conn, "Com_stmt_prepare") - prepares; n != 1 {
		t.Errorf("%d prepares of a text the server refuses, want 1 (then no more tries)", n)
	}
}
