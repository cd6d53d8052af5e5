package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GaugeFunc is a gauge read from its source on every scrape.
type GaugeFunc struct {
	Name, Help string
	Labels     []string
	// Read returns one value per label combination (nil labels for none).
	Read func(ctx context.Context) ([]Sample, error)
}

// Sample is one value of a GaugeFunc.
type Sample struct {
	Labels []string
	Value  float64
}

// scrapeCollector turns GaugeFuncs into a prometheus.Collector. A source
// that fails (MySQL down) reports iacc_scrape_error{source}=1 instead of
// failing the whole scrape.
type scrapeCollector struct {
	gauges  []GaugeFunc
	descs   []*prometheus.Desc
	errDesc *prometheus.Desc
	timeout time.Duration
}

// NewScrapeCollector returns a collector of gauges read on scrape.
func NewScrapeCollector(timeout time.Duration, gauges ...GaugeFunc) prometheus.Collector {
	c := &scrapeCollector{gauges: gauges, timeout: timeout,
		errDesc: prometheus.NewDesc("iacc_scrape_error", "1 when a metric source could not be read on this scrape.", []string{"source"}, nil)}
	for _, g := range gauges {
		c.descs = append(c.descs, prometheus.NewDesc(g.Name, g.Help, g.Labels, nil))
	}
	return c
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.errDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for i, g := range c.gauges {
		samples, err := g.Read(ctx)
		failed := 0.0
		if err != nil {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(c.errDesc, prometheus.GaugeValue, failed, g.Name)
		if err != nil {
			continue
		}
		for _, s := range samples {
			ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.GaugeValue, s.Value, s.Labels...)
		}
	}
}
