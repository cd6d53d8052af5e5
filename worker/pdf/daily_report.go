package pdf

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
)

// dailyReport maps a tenant's nightly report (store.Report) to the Report
// RenderReport prints: the day, a summary of counts and totals per currency,
// and one table per list of the report, each with a totals row per currency.
//
// It fails only on a report whose amounts are not decimal numbers.
func dailyReport(tenantName string, r store.Report) (Report, error) {
	d := r.Data
	day := d.Day
	if day == "" {
		day = r.Day.Format(time.DateOnly)
	}
	generated := d.GeneratedAt
	if generated.IsZero() {
		generated = r.UpdatedAt
	}
	out := Report{TenantName: tenantName, Title: "Daily report", Subtitle: day, GeneratedAt: generated}

	groups := []struct {
		label string // summary key
		noun  string // what is counted
		rows  []store.ReportRow
	}{
		{"Orders created", "order", firstNonEmpty(d.Orders.ByStatus, d.Orders.ByVendor)},
		{"Invoices received", "invoice", firstNonEmpty(d.Invoices.ByStatus, d.Invoices.ByVendor)},
		{"Payments made", "payment", firstNonEmpty(d.Payments.ByStatus, d.Payments.ByVendor)},
		{"Open commitments", "order", d.OpenCommitments},
	}
	for _, g := range groups {
		sums, err := sumRows(g.rows)
		if err != nil {
			return Report{}, fmt.Errorf("report %s: %s: %w", day, strings.ToLower(g.label), err)
		}
		out.Summary = append(out.Summary, KeyValue{g.label, summaryValue(sums, g.noun)})
	}
	overdue, err := sumOverdue(d.Overdue)
	if err != nil {
		return Report{}, fmt.Errorf("report %s: overdue invoices: %w", day, err)
	}
	out.Summary = append(out.Summary, KeyValue{"Overdue invoices", summaryValue(overdue, "invoice")})

	for _, s := range []struct {
		title, key string
		status     bool // the key is a status code
		rows       []store.ReportRow
	}{
		{"Orders by status", "Status", true, d.Orders.ByStatus},
		{"Orders by vendor", "Vendor", false, d.Orders.ByVendor},
		{"Invoices by status", "Status", true, d.Invoices.ByStatus},
		{"Invoices by vendor", "Vendor", false, d.Invoices.ByVendor},
		{"Payments by vendor", "Vendor", false, d.Payments.ByVendor},
		{"Open commitments", "Vendor", false, d.OpenCommitments},
	} {
		sec := ReportSection{
			Title:      s.title,
			Columns:    []string{s.key, "Currency", "Count", "Total"},
			RightAlign: []bool{false, false, true, true},
		}
		if s.title == "Open commitments" {
			sec.Columns[2], sec.Columns[3] = "Orders", "Not invoiced"
		}
		for _, row := range s.rows {
			key := row.Key
			if s.status {
				key = statusText(key)
			}
			sec.Rows = append(sec.Rows, []string{key, row.Currency, strconv.Itoa(row.Count), row.Total})
		}
		sums, err := sumRows(s.rows)
		if err != nil {
			return Report{}, fmt.Errorf("report %s: %s: %w", day, strings.ToLower(s.title), err)
		}
		if len(sums) > 0 {
			sec.Footer = footer(sums, 4, 1, 2, 3)
		}
		out.Sections = append(out.Sections, sec)
	}

	sec := ReportSection{
		Title:      "Overdue invoices",
		Columns:    []string{"Invoice", "Vendor", "Due", "Days overdue", "Currency", "Outstanding"},
		RightAlign: []bool{false, false, false, true, false, true},
	}
	for _, o := range d.Overdue {
		sec.Rows = append(sec.Rows, []string{o.Number, o.Vendor, o.DueDate, strconv.Itoa(o.DaysOverdue), o.Currency, o.Outstanding})
	}
	if len(overdue) > 0 {
		sec.Footer = footer(overdue, 6, 4, -1, 5)
	}
	out.Sections = append(out.Sections, sec)
	return out, nil
}

func firstNonEmpty(a, b []store.ReportRow) []store.ReportRow {
	if len(a) > 0 {
		return a
	}
	return b
}

// currencyTotal is what rows in one currency add up to.
type currencyTotal struct {
	currency string
	count    int
	total    decimal.Decimal
}

// sumRows adds up rows per currency, in currency order.
func sumRows(rows []store.ReportRow) ([]currencyTotal, error) {
	var sums []currencyTotal
	for _, r := range rows {
		amount, err := decimal.NewFromString(r.Total)
		if err != nil {
			return nil, fmt.Errorf("total %q of %q: %w", r.Total, r.Key, err)
		}
		sums = addTo(sums, r.Currency, r.Count, amount)
	}
	return sums, nil
}

// sumOverdue adds up the overdue invoices per currency.
func sumOverdue(rows []store.OverdueRow) ([]currencyTotal, error) {
	var sums []currencyTotal
	for _, r := range rows {
		amount, err := decimal.NewFromString(r.Outstanding)
		if err != nil {
			return nil, fmt.Errorf("outstanding %q of %s: %w", r.Outstanding, r.Number, err)
		}
		sums = addTo(sums, r.Currency, 1, amount)
	}
	return sums, nil
}

func addTo(sums []currencyTotal, currency string, count int, amount decimal.Decimal) []currencyTotal {
	i, found := slices.BinarySearchFunc(sums, currency, func(s currencyTotal, c string) int { return cmp.Compare(s.currency, c) })
	if !found {
		sums = slices.Insert(sums, i, currencyTotal{currency: currency, total: decimal.Zero})
	}
	sums[i].count += count
	sums[i].total = sums[i].total.Add(amount)
	return sums
}

// summaryValue says what sums count and add up to: "3 orders, 350.50 EUR;
// 1 order, 10.00 USD", or "none".
func summaryValue(sums []currencyTotal, noun string) string {
	if len(sums) == 0 {
		return "none"
	}
	parts := make([]string, len(sums))
	for i, s := range sums {
		n := noun
		if s.count != 1 {
			n += "s"
		}
		parts[i] = fmt.Sprintf("%d %s, %s %s", s.count, n, formatMoney(s.total), s.currency)
	}
	return strings.Join(parts, "; ")
}

// footer is a totals row of n cells: "Total" first, and one line per
// currency in the currency, count and total columns (count < 0: none).
func footer(sums []currencyTotal, n, currencyCol, countCol, totalCol int) []string {
	cells := make([]string, n)
	cells[0] = "Total"
	var cur, cnt, tot []string
	for _, s := range sums {
		cur = append(cur, s.currency)
		cnt = append(cnt, strconv.Itoa(s.count))
		tot = append(tot, formatMoney(s.total))
	}
	cells[currencyCol] = strings.Join(cur, "\n")
	if countCol >= 0 {
		cells[countCol] = strings.Join(cnt, "\n")
	}
	cells[totalCol] = strings.Join(tot, "\n")
	return cells
}
