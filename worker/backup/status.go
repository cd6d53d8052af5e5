package backup

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iacc/iacc/store"
)

// Status is what the metrics and the missing-backup alert look at.
type Status struct {
	// LastSuccess is the latest successful backup, nil when none ever was.
	LastSuccess *store.BackupRun
	// LastBackup is the latest finished backup run, succeeded or failed.
	LastBackup *store.BackupRun
	// LastVerify is the latest finished verification, nil when none was.
	LastVerify *store.BackupRun
	// Overdue: no backup succeeded within the OverdueAfter window.
	Overdue bool
}

// ReadStatus reads the backup status from backup_runs at time now.
func ReadStatus(ctx context.Context, q store.Querier, now time.Time, overdueAfter time.Duration) (Status, error) {
	var st Status
	get := func(kind string, states ...string) (*store.BackupRun, error) {
		r, err := store.LastBackupRun(ctx, q, kind, states...)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &r, nil
	}
	var err error
	if st.LastSuccess, err = get(store.BackupKindBackup, store.BackupSucceeded); err != nil {
		return st, err
	}
	if st.LastBackup, err = get(store.BackupKindBackup); err != nil {
		return st, err
	}
	if st.LastVerify, err = get(store.BackupKindVerify); err != nil {
		return st, err
	}
	st.Overdue = st.LastSuccess == nil || st.LastSuccess.FinishedAt.Before(now.Add(-overdueAfter))
	return st, nil
}

// Status reads the backup status now.
func (s *Service) Status(ctx context.Context) (Status, error) {
	return ReadStatus(ctx, s.cfg.DB, s.now(), s.cfg.OverdueAfter)
}

// Collector exports the backup status to Prometheus, read from MySQL at
// each scrape (a few indexed queries). Every process may export it (alert
// rules take the max); a failed read does not fail the scrape.
//
//	iacc_backup_status_up                       1 if the status was read, else 0 and no other series
//	iacc_backup_last_success_timestamp_seconds  end of the latest successful backup (0: none)
//	iacc_backup_last_success_bytes              its encrypted size
//	iacc_backup_last_success_duration_seconds   how long it took
//	iacc_backup_last_run_succeeded              1 if the latest finished backup succeeded, else 0
//	iacc_backup_overdue                         1 if no backup succeeded in the overdue window (26 h)
//	iacc_backup_last_verify_timestamp_seconds   end of the latest verification (0: none)
//	iacc_backup_last_verify_succeeded           1 if it succeeded, else 0
type Collector struct {
	db           store.Querier
	overdueAfter time.Duration
	now          func() time.Time

	up, lastSuccess, lastBytes, lastDuration, lastRunOK, overdue, lastVerify, lastVerifyOK *prometheus.Desc
}

// NewCollector returns a Collector reading db; overdueAfter is the alert
// window (26 h when zero).
func NewCollector(db store.Querier, overdueAfter time.Duration) *Collector {
	if overdueAfter <= 0 {
		overdueAfter = 26 * time.Hour
	}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("iacc_backup_"+name, help, nil, nil)
	}
	return &Collector{db: db, overdueAfter: overdueAfter, now: time.Now,
		up:           d("status_up", "1 if the backup status could be read from MySQL on this scrape, else 0 (and no other iacc_backup_ gauge)."),
		lastSuccess:  d("last_success_timestamp_seconds", "Unix time the latest successful database backup finished (0: none)."),
		lastBytes:    d("last_success_bytes", "Encrypted size of the latest successful database backup."),
		lastDuration: d("last_success_duration_seconds", "Duration of the latest successful database backup."),
		lastRunOK:    d("last_run_succeeded", "1 if the latest finished database backup succeeded, 0 if it failed."),
		overdue:      d("overdue", "1 if no database backup succeeded within the overdue window (26 h)."),
		lastVerify:   d("last_verify_timestamp_seconds", "Unix time the latest backup verification finished (0: none)."),
		lastVerifyOK: d("last_verify_succeeded", "1 if the latest backup verification succeeded, 0 if it failed or none ran."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.lastSuccess, c.lastBytes, c.lastDuration, c.lastRunOK, c.overdue, c.lastVerify, c.lastVerifyOK} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	st, err := ReadStatus(ctx, c.db, c.now(), c.overdueAfter)
	if err != nil {
		// MySQL unreachable: the status is unknown, so the other series
		// are left out (alerts on absent() see it) and the scrape goes on.
		g(c.up, 0)
		return
	}
	g(c.up, 1)
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	if r := st.LastSuccess; r != nil {
		g(c.lastSuccess, float64(r.FinishedAt.UnixMilli())/1000)
		g(c.lastBytes, float64(r.Bytes))
		g(c.lastDuration, r.Duration.Seconds())
	} else {
		g(c.lastSuccess, 0)
		g(c.lastBytes, 0)
		g(c.lastDuration, 0)
	}
	g(c.lastRunOK, b(st.LastBackup != nil && st.LastBackup.State == store.BackupSucceeded))
	g(c.overdue, b(st.Overdue))
	if r := st.LastVerify; r != nil {
		g(c.lastVerify, float64(r.FinishedAt.UnixMilli())/1000)
	} else {
		g(c.lastVerify, 0)
	}
	g(c.lastVerifyOK, b(st.LastVerify != nil && st.LastVerify.State == store.BackupSucceeded))
}
