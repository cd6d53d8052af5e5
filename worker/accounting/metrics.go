package accounting

import (
	"context"
	"time"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
)

// BacklogGauge reads the accounting backlog from MySQL on every scrape (so
// every replica reports the same, whole-system figures):
//
//	iacc_accounting_backlog{state="pending"}                     documents not acknowledged by the partner yet
//	iacc_accounting_backlog{state="needs_attention"}             documents the partner rejected: a person must fix them
//	iacc_accounting_backlog{state="oldest_pending_age_seconds"}  how long the oldest pending one has waited
//
// Alert on needs_attention > 0; the partner's messages are in
// accounting_syncs.last_error and in the order's activity timeline (the
// archived accounting:sync task). Register it with
// metrics.NewScrapeCollector. Attempts are counted per outcome in
// metrics.Set.AccountingSyncs.
func BacklogGauge(db *store.DB) metrics.GaugeFunc {
	return metrics.GaugeFunc{Name: "iacc_accounting_backlog",
		Help:   "Accounting syncs not done: pending (not acknowledged by the partner yet), needs_attention (rejected by the partner: a person must fix the document); oldest_pending_age_seconds is the wait of the oldest pending one.",
		Labels: []string{"state"},
		Read: func(ctx context.Context) ([]metrics.Sample, error) {
			b, err := store.GetAccountingBacklog(ctx, db)
			if err != nil {
				return nil, err
			}
			age := 0.0
			if b.OldestPending != nil {
				age = max(0, time.Since(*b.OldestPending).Seconds())
			}
			return []metrics.Sample{
				{Labels: []string{store.AccountingPending}, Value: float64(b.Pending)},
				{Labels: []string{store.AccountingNeedsAttention}, Value: float64(b.NeedsAttention)},
				{Labels: []string{"oldest_pending_age_seconds"}, Value: age},
			}, nil
		}}
}

// Outcome labels of metrics.Set.AccountingSyncs.
const (
	outcomeSynced         = "synced"
	outcomeRetry          = "retry"
	outcomeNeedsAttention = "needs_attention"
)
