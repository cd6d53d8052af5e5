package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/tasks"
)

// errNotConfigured fails the backup tasks of a worker built without a
// Service.
var errNotConfigured = errors.New("backups are not configured in this worker process")

// HandleRun handles backup:run. A failure of its last attempt sends an alert
// email to the ops address. A nil Service fails the task for good.
func (s *Service) HandleRun(ctx context.Context, p tasks.BackupRun, _ *asynq.Task) error {
	if s == nil {
		return tasks.Permanent(errNotConfigured)
	}
	at := p.ScheduledFor
	if at.IsZero() {
		at = s.now()
	}
	_, err := s.Run(ctx, at)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNoRecipient) {
		err = tasks.Permanent(err)
	}
	if lastAttempt(ctx, err) {
		id := NewID(at)
		s.alert(ctx, "backup-failed-"+id, "iacc: the database backup "+id+" failed",
			fmt.Sprintf("The backup %s of database %s failed (last attempt):\n\n%v\n\n"+
				"No new backup exists until this is fixed. Runbook: docs/runbooks/backup-restore.md, \"Alerts\".",
				id, s.cfg.DB.Name(), err))
	}
	return err
}

// HandleVerify handles backup:verify. A backup that fails verification
// (changed file, wrong key, data differing from the manifest) fails the task
// for good; either way its last attempt sends an alert email.
func (s *Service) HandleVerify(ctx context.Context, p tasks.BackupVerify, _ *asynq.Task) error {
	if s == nil {
		return tasks.Permanent(errNotConfigured)
	}
	_, err := s.Verify(ctx, p.BackupID)
	if err == nil {
		return nil
	}
	for _, e := range []error{ErrMismatch, ErrTampered, ErrWrongIdentity, ErrNoIdentity, ErrNotFound} {
		if errors.Is(err, e) {
			err = tasks.Permanent(err)
			break
		}
	}
	if lastAttempt(ctx, err) {
		id := p.BackupID
		if id == "" {
			id = "latest"
		}
		s.alert(ctx, "backup-verify-failed-"+id+"-"+s.now().Format("20060102"), "iacc: backup verification failed ("+id+")",
			fmt.Sprintf("Restoring backup %s of database %s into a scratch database and comparing it with its manifest failed:\n\n%v\n\n"+
				"The backup may not be restorable. Runbook: docs/runbooks/backup-restore.md, \"Alerts\".",
				id, s.cfg.DB.Name(), err))
	}
	return err
}

// HandleCheck handles backup:check: while no backup has succeeded within
// OverdueAfter, it sends an alert email, at most one a day.
func (s *Service) HandleCheck(ctx context.Context, _ tasks.BackupCheck, _ *asynq.Task) error {
	if s == nil {
		return tasks.Permanent(errNotConfigured)
	}
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Overdue {
		return nil
	}
	last := "no backup has ever succeeded"
	if st.LastSuccess != nil {
		last = fmt.Sprintf("the last successful backup is %s, finished %s (%s ago)", st.LastSuccess.BackupID,
			st.LastSuccess.FinishedAt.UTC().Format(time.RFC3339), s.now().Sub(*st.LastSuccess.FinishedAt).Round(time.Minute))
	}
	s.alert(ctx, "backup-overdue-"+s.now().Format("20060102"), "iacc: no database backup in "+s.cfg.OverdueAfter.String(),
		fmt.Sprintf("No backup of database %s has succeeded in the last %s: %s.\n\n"+
			"Check the backup:run tasks (asynq dashboard, queue low) and the worker logs; run `iacc backup run` by hand. "+
			"Runbook: docs/runbooks/backup-restore.md, \"Alerts\".", s.cfg.DB.Name(), s.cfg.OverdueAfter, last))
	return nil
}

// lastAttempt reports whether a failed task will not be retried.
func lastAttempt(ctx context.Context, err error) bool {
	if errors.Is(err, asynq.SkipRetry) {
		return true
	}
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return !ok1 || !ok2 || n >= max
}

// alert logs the alert and emails it to the ops address (a "notice" email
// deduplicated by key).
func (s *Service) alert(ctx context.Context, key, title, body string) {
	s.log.Error("backup alert", "alert", key, "title", title)
	if s.cfg.OpsEmail == "" || s.cfg.Queue == nil {
		s.log.Warn("backup alert not emailed: no ops address configured (IACC_OPS_EMAIL)", "alert", key)
		return
	}
	e := tasks.EmailSend{Template: tasks.EmailNotice, To: s.cfg.OpsEmail, SubjectType: "backup", Key: key, Title: title, Body: body}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := tasks.Enqueue(ectx, s.cfg.Queue, e, e.TaskID()); err != nil {
		s.log.Error("enqueue backup alert email", "alert", key, "err", err)
	}
}
