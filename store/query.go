package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// where builds a conjunction of equality filters.
type where struct {
	sql  string
	args []any
}

func (w *where) eq(col, v string) {
	if v != "" {
		w.sql += " AND " + col + " = ?"
		w.args = append(w.args, v)
	}
}

func (w *where) eqID(col string, v int64) {
	if v != 0 {
		w.sql += " AND " + col + " = ?"
		w.args = append(w.args, v)
	}
}

// listPage counts the rows of table matching w and returns one page of them,
// newest (highest id) first.
func listPage[T any](ctx context.Context, q Querier, table, cols string, w where, p Page, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, int, error) {
	var total int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+w.sql, w.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", table, err)
	}
	out := []T{}
	if total == 0 {
		return out, 0, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` WHERE `+w.sql+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		append(w.args, p.Limit(), p.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan %s: %w", table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", table, err)
	}
	return out, total, nil
}

// sinceEpoch is t, or 1970-01-01 for an earlier t: a "since" bound for a
// DATETIME column, whose range the zero time is out of.
func sinceEpoch(t time.Time) time.Time {
	if epoch := time.Unix(0, 0).UTC(); t.Before(epoch) {
		return epoch
	}
	return t
}

// queryAll runs query and scans every row it returns with scan.
func queryAll[T any](ctx context.Context, q Querier, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// qualify prefixes each column of a comma-separated list with alias, for a
// list shared by single-table reads and joins.
func qualify(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
