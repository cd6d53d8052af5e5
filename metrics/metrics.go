package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Set holds every metric iacc updates itself. (Queue sizes and latency come
// from asynq's collector, pool stats and backlog gauges from collectors that
// read their source on scrape.)
type Set struct {
	HTTPRequests *prometheus.CounterVec   // method, route, status
	HTTPDuration *prometheus.HistogramVec // method, route

	TasksProcessed *prometheus.CounterVec   // type, queue
	TasksFailed    *prometheus.CounterVec   // type, queue, permanent ("true"|"false")
	TasksRetried   *prometheus.CounterVec   // type, queue: runs that were retries of an earlier failure
	TaskDuration   *prometheus.HistogramVec // type, queue

	OutboxPublished *prometheus.CounterVec // path ("fast"|"relay"), result ("published"|"duplicate"|"failed")

	CacheRequests *prometheus.CounterVec // result ("hit"|"miss")

	WebhookDeliveries *prometheus.CounterVec // outcome ("succeeded"|"failed"|"dead"|"disabled")
	Emails            *prometheus.CounterVec // result ("sent"|"failed"|"suppressed"|"duplicate")
	AccountingSyncs   *prometheus.CounterVec // state ("synced"|"retry"|"needs_attention")

	Backups *prometheus.CounterVec // kind ("backup"|"verify"), result ("succeeded"|"failed")
}

// New builds the set and registers it on reg.
func New(reg prometheus.Registerer) *Set {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10}
	s := &Set{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total",
			Help: "HTTP requests by method, route template and status code."}, []string{"method", "route", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds",
			Help: "HTTP request latency by method and route template.", Buckets: buckets}, []string{"method", "route"}),
		TasksProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_tasks_processed_total",
			Help: "Background tasks run to success, by task type and queue."}, []string{"type", "queue"}),
		TasksFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_tasks_failed_total",
			Help: "Background task runs that failed, by task type and queue; permanent=true ones are archived."}, []string{"type", "queue", "permanent"}),
		TasksRetried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_tasks_retried_total",
			Help: "Background task runs that were retries of an earlier failed run."}, []string{"type", "queue"}),
		TaskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iacc_task_duration_seconds",
			Help: "Background task run time by task type and queue.", Buckets: buckets}, []string{"type", "queue"}),
		OutboxPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_outbox_publish_total",
			Help: "Outbox events handed to the queue, by path (fast: right after COMMIT; relay) and result."}, []string{"path", "result"}),
		CacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_cache_requests_total",
			Help: "Read-cache lookups by result."}, []string{"result"}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome."}, []string{"outcome"}),
		Emails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_emails_total",
			Help: "Emails by result."}, []string{"result"}),
		AccountingSyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_accounting_syncs_total",
			Help: "Accounting sync attempts by resulting state."}, []string{"state"}),
		Backups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iacc_backup_runs_total",
			Help: "Backup and verification runs by result."}, []string{"kind", "result"}),
	}
	reg.MustRegister(s.HTTPRequests, s.HTTPDuration, s.TasksProcessed, s.TasksFailed, s.TasksRetried, s.TaskDuration,
		s.OutboxPublished, s.CacheRequests, s.WebhookDeliveries, s.Emails, s.AccountingSyncs, s.Backups)
	return s
}

// Discard is a set registered nowhere, for code paths and tests without metrics.
func Discard() *Set { return New(prometheus.NewRegistry()) }
