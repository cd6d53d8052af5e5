package bench

import (
	"context"
	"fmt"
	"strconv"
)

// dbStatus reads the MariaDB/MySQL global status counters a dbProbe
// follows. They are server-wide: other databases' activity counts too.
func (h *Harness) dbStatus(ctx context.Context) (map[string]int64, error) {
	rows, err := h.db.QueryContext(ctx, `SHOW GLOBAL STATUS WHERE Variable_name IN
		('Questions', 'Com_commit', 'Innodb_data_fsyncs', 'Innodb_deadlocks', 'Innodb_row_lock_waits', 'Innodb_row_lock_time')`)
	if err != nil {
		return nil, fmt.Errorf("read MySQL status: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read MySQL status: %w", err)
		}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, rows.Err()
}

// dbProbe reports what the database did during the window: statements
// (every client's, the probe's own two included; rowFrom gives them per
// successful operation, which the probe does not know yet), commits,
// fsyncs per commit (group commit at work), deadlocks (each one a retried
// or failed transaction) and row lock waits.
type dbProbe struct {
	h  *Harness
	s0 map[string]int64
}

func (p *dbProbe) begin() { p.s0, _ = p.h.dbStatus(context.Background()) }

func (p *dbProbe) end(st *stepStats) {
	s1, err := p.h.dbStatus(context.Background())
	if err != nil || p.s0 == nil {
		return
	}
	d := func(k string) int64 { return s1[k] - p.s0[k] }
	commits := d("Com_commit")
	st.Metrics["db_commits"] = float64(commits)
	st.Metrics["db_deadlocks"] = float64(d("Innodb_deadlocks"))
	st.Metrics["db_row_lock_waits"] = float64(d("Innodb_row_lock_waits"))
	st.Metrics["db_row_lock_time_ms"] = float64(d("Innodb_row_lock_time"))
	st.Metrics["db_statements"] = float64(d("Questions")) // per operation: rowFrom
	note := fmt.Sprintf("db: %d deadlocks, %d lock waits", d("Innodb_deadlocks"), d("Innodb_row_lock_waits"))
	if commits > 0 {
		f := float64(d("Innodb_data_fsyncs")) / float64(commits)
		st.Metrics["db_fsyncs_per_commit"] = round2(f)
		note += fmt.Sprintf(", %.2f fsync/commit", f)
	}
	st.Notes = append(st.Notes, note)
}
