package backup

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
)

// pendingEmails returns the email:send payloads waiting in Redis.
func pendingEmails(t *testing.T, insp *asynq.Inspector) []tasks.EmailSend {
	t.Helper()
	infos, err := insp.ListPendingTasks(tasks.EmailSend{}.Options().Queue)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	var out []tasks.EmailSend
	for _, ti := range infos {
		if ti.Type != (tasks.EmailSend{}).Kind() {
			continue
		}
		var e tasks.EmailSend
		if err := json.Unmarshal(ti.Payload, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// A failed backup (last attempt), a failed verification and an overdue
// backup each email the ops address once; the status and the Prometheus
// gauges follow the recorded runs.
func TestAlertsStatusAndMetrics(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	b := setup(t, setupOpts{now: func() time.Time { return now }})
	ctx := context.Background()
	rdb := storetest.NewRedis(t)
	client := asynq.NewClientFromRedisClient(rdb.Client)
	insp := asynq.NewInspectorFromRedisClient(rdb.Client)
	set := metrics.Discard()
	svc := b.with(t, func(c *Config) {
		c.Queue, c.OpsEmail, c.Metrics = client, "ops@example.test", set
		c.Now = func() time.Time { return now }
	})
	reg := prometheus.NewPedanticRegistry()
	coll := NewCollector(b.db, 0)
	coll.now = func() time.Time { return now }
	reg.MustRegister(coll)

	if gauge(t, reg, "iacc_backup_overdue") != 1 || gauge(t, reg, "iacc_backup_last_success_timestamp_seconds") != 0 {
		t.Error("no backup yet: want overdue=1 and no last success")
	}

	// A backup that cannot be written: permanent, one alert.
	noKey := b.with(t, func(c *Config) {
		c.Queue, c.OpsEmail, c.Metrics, c.Recipients = client, "ops@example.test", set, nil
		c.Now = func() time.Time { return now }
	})
	tick := tasks.BackupRun{Tick: tasks.Tick{Job: "backup", ScheduledFor: now}}
	err := noKey.HandleRun(ctx, tick, nil)
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, ErrNoRecipient) {
		t.Fatalf("backup without recipient: %v", err)
	}
	emails := pendingEmails(t, insp)
	if len(emails) != 1 || emails[0].Template != tasks.EmailNotice || emails[0].To != "ops@example.test" ||
		emails[0].Key != "backup-failed-20261125T020000Z" || !strings.Contains(emails[0].Title, "20261125T020000Z") ||
		!strings.Contains(emails[0].Body, "IACC_BACKUP_AGE_RECIPIENT") {
		t.Fatalf("alert emails = %+v", emails)
	}
	if got := testutil.ToFloat64(set.Backups.WithLabelValues("backup", "failed")); got != 1 {
		t.Errorf("iacc_backup_runs_total{backup,failed} = %v", got)
	}
	if gauge(t, reg, "iacc_backup_last_run_succeeded") != 0 {
		t.Error("last run failed: want last_run_succeeded=0")
	}

	// Overdue: one email a day, however often the check runs.
	for i := 0; i < 2; i++ {
		if err := svc.HandleCheck(ctx, tasks.BackupCheck{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	emails = pendingEmails(t, insp)
	if len(emails) != 2 || emails[1].Key != "backup-overdue-20261125" || !strings.Contains(emails[1].Body, "no backup has ever succeeded") {
		t.Fatalf("overdue alert emails = %+v", emails)
	}

	// A good backup clears the overdue state.
	if err := svc.HandleRun(ctx, tick, nil); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Status(ctx)
	if err != nil || st.Overdue || st.LastSuccess == nil || st.LastSuccess.BackupID != "20261125T020000Z" || st.LastBackup.State != "succeeded" {
		t.Fatalf("status after a good backup = %+v, %v", st, err)
	}
	if gauge(t, reg, "iacc_backup_overdue") != 0 || gauge(t, reg, "iacc_backup_last_success_timestamp_seconds") != float64(now.Unix()) ||
		gauge(t, reg, "iacc_backup_last_success_bytes") != float64(st.LastSuccess.Bytes) || gauge(t, reg, "iacc_backup_last_run_succeeded") != 1 {
		t.Error("gauges after a good backup are wrong")
	}
	if err := svc.HandleCheck(ctx, tasks.BackupCheck{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(pendingEmails(t, insp)); n != 2 {
		t.Errorf("check after a good backup sent an email (%d pending)", n)
	}

	// 27 hours later it is overdue again.
	now = now.Add(27 * time.Hour)
	if st, _ := svc.Status(ctx); !st.Overdue {
		t.Error("27 h after the last backup: not overdue")
	}
	if gauge(t, reg, "iacc_backup_overdue") != 1 {
		t.Error("27 h after the last backup: gauge not overdue")
	}

	// A verification with the wrong key: permanent, one alert; a good one
	// is exported.
	other, _ := age.GenerateX25519Identity()
	wrong := b.with(t, func(c *Config) {
		c.Queue, c.OpsEmail, c.Identities = client, "ops@example.test", []age.Identity{other}
		c.Now = func() time.Time { return now }
	})
	err = wrong.HandleVerify(ctx, tasks.BackupVerify{}, nil)
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("verify with the wrong key: %v", err)
	}
	emails = pendingEmails(t, insp)
	if len(emails) != 3 || !strings.HasPrefix(emails[2].Key, "backup-verify-failed-latest-") {
		t.Fatalf("verification alert emails = %+v", emails)
	}
	if gauge(t, reg, "iacc_backup_last_verify_succeeded") != 0 || gauge(t, reg, "iacc_backup_last_verify_timestamp_seconds") == 0 {
		t.Error("failed verification not exported")
	}
	if err := svc.HandleVerify(ctx, tasks.BackupVerify{BackupID: "20261125T020000Z"}, nil); err != nil {
		t.Fatal(err)
	}
	if gauge(t, reg, "iacc_backup_last_verify_succeeded") != 1 {
		t.Error("good verification not exported")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %v", problems, err)
	}
}

// A worker built without a Service fails backup tasks for good.
func TestHandlersWithoutService(t *testing.T) {
	t.Parallel()
	var s *Service
	ctx := context.Background()
	for name, err := range map[string]error{
		"run":    s.HandleRun(ctx, tasks.BackupRun{}, nil),
		"verify": s.HandleVerify(ctx, tasks.BackupVerify{}, nil),
		"check":  s.HandleCheck(ctx, tasks.BackupCheck{}, nil),
	} {
		if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, errNotConfigured) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
