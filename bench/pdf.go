package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/worker/pdf"
)

// Scenario 5a: PDF render rate per core. worker/pdf.RenderPurchaseOrder
// (one page, 20 rows) in a loop inside the harness, with 1 goroutine and
// with GOMAXPROCS goroutines (and, as information, GOMAXPROCS goroutines
// with GOGC=400: FINDINGS.md shows fpdf's allocations make the GC the limit
// when renders run in parallel). The iacc child is stopped first.
func pdfScenario() Scenario {
	return Scenario{
		ID: "pdf", Aliases: []string{"5a"},
		Title: "PDF render rate per core (worker/pdf.RenderPurchaseOrder, 20 rows, in-process)",
		Run:   runPDF,
	}
}

func benchPO(rows int) pdf.PurchaseOrder {
	po := pdf.PurchaseOrder{
		TenantName: "Acme Holdings", Number: "PO-004242", Status: "submitted", Currency: "EUR",
		Notes:     "Deliver to dock 3.\nCall before arrival.",
		CreatedAt: time.Date(2025, 5, 17, 10, 30, 0, 0, time.UTC),
		Vendor:    pdf.Party{Name: "Globex Supplies", Email: "orders@globex.example", Address: "1 Industrial Way\n12345 Springfield"},
		Total:     decimal.Zero,
	}
	for i := range rows {
		c := itemCatalog[i%len(itemCatalog)]
		q, p := decimal.RequireFromString(c.qty), decimal.RequireFromString(c.price)
		t := q.Mul(p).Round(2)
		po.Items = append(po.Items, pdf.Line{Description: c.desc, Quantity: q, UnitPrice: p, LineTotal: t})
		po.Total = po.Total.Add(t)
	}
	return po
}

func runPDF(ctx context.Context, h *Harness) ([]Row, error) {
	h.StopServer() // nothing else of ours on the CPU
	po := benchPO(20)
	var sample bytes.Buffer
	if err := pdf.RenderPurchaseOrder(ctx, &sample, po); err != nil {
		return nil, err
	}
	procs := runtime.GOMAXPROCS(0)
	steps := []struct {
		name       string
		goroutines int
		gogc       int // 0: leave as is
	}{
		{"1 goroutine", 1, 0},
		{fmt.Sprintf("%d goroutines (GOMAXPROCS)", procs), procs, 0},
		{fmt.Sprintf("%d goroutines, GOGC=400", procs), procs, 400},
	}
	gogcEnv := os.Getenv("GOGC")
	if gogcEnv == "" {
		gogcEnv = "100"
	}
	var rows []Row
	var single float64
	for _, s := range steps {
		h.logf("pdf: %s", s.name)
		oldGC := -2
		if s.gogc > 0 {
			oldGC = debug.SetGCPercent(s.gogc)
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		st, err := h.step(ctx, loadSpec{
			Clients: s.goroutines, Warmup: min(h.cfg.Warmup, time.Second), Duration: h.cfg.Duration,
			Probes: []probe{h.cpuProbe()},
			NewWorker: func(int) func() error {
				var buf bytes.Buffer
				return func() error {
					buf.Reset()
					return pdf.RenderPurchaseOrder(ctx, &buf, po)
				}
			},
		})
		runtime.ReadMemStats(&m1)
		if oldGC != -2 {
			debug.SetGCPercent(oldGC)
		}
		row := rowFrom("pdf render (in-process)", s.name, st)
		cores := st.Metrics["cpu_bench_cores"]
		if cores > 0 {
			row.Metrics["pdfs_per_cpu_second"] = round2(st.Rate() / cores)
		}
		allocMB := 0.0
		if st.All > 0 { // warm-up included: the allocations are counted over the whole step
			allocMB = float64(m1.TotalAlloc-m0.TotalAlloc) / (1 << 20) / float64(st.All)
		}
		row.Metrics["alloc_mb_per_pdf"] = round2(allocMB)
		row.Metrics["gc_cycles"] = float64(m1.NumGC - m0.NumGC)
		row.Metrics["pdf_bytes"] = float64(sample.Len())
		gc := gogcEnv
		if s.gogc > 0 {
			gc = fmt.Sprint(s.gogc)
		}
		row.note(fmt.Sprintf("%.0f PDFs/s/core (CPU-time based: %.2f cores busy); %.1f MB alloc/PDF; %d GCs; GOGC=%s; %d B PDF",
			row.Metrics["pdfs_per_cpu_second"], cores, allocMB, m1.NumGC-m0.NumGC, gc, sample.Len()))
		if s.goroutines == 1 {
			single = row.Throughput
		} else if single > 0 {
			row.Ceiling, row.CeilingFrom = round2(single*float64(s.goroutines)), fmt.Sprintf("%d × the 1-goroutine rate", s.goroutines)
			row.Ratio = round2(row.Throughput / row.Ceiling)
		}
		rows = append(rows, row)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}
