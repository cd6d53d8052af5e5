package precedence

import "github.com/prometheus/client_golang/prometheus"

var (
	heldDesc = prometheus.NewDesc("iacc_precedence_held_tasks",
		"Tasks the worker holds back now because the API of the same process is busy (IACC_API_PRECEDENCE).", nil, nil)
	heldTimeDesc = prometheus.NewDesc("iacc_precedence_held_seconds_total",
		"Time during which the worker held tasks back for the API (IACC_API_PRECEDENCE).", nil, nil)
	spentDesc = prometheus.NewDesc("iacc_precedence_budget_spent",
		"1 while the API's precedence budget is used up: tasks run at once until the queues are empty (IACC_API_PRECEDENCE).", nil, nil)
)

// collector exports a gate's Stats.
type collector struct{ g *Gate }

// NewCollector returns the Prometheus collector of g's state.
func NewCollector(g *Gate) prometheus.Collector { return collector{g} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- heldDesc
	ch <- heldTimeDesc
	ch <- spentDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.g.Stats()
	spent := 0.0
	if s.Spent {
		spent = 1
	}
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(s.Held))
	ch <- prometheus.MustNewConstMetric(heldTimeDesc, prometheus.CounterValue, s.HeldTime.Seconds())
	ch <- prometheus.MustNewConstMetric(spentDesc, prometheus.GaugeValue, spent)
}
