// Package report builds the nightly report: report:nightly (a cron tick)
// enqueues one report:generate per tenant for the previous day, and
// report:generate aggregates that day's orders, invoices and payments by
// status and vendor, open commitments and overdue invoices, stores the CSV
// in the blob store and the report in MySQL (replacing an earlier version of
// the same day) with a report.ready event. The event's dispatch renders the
// PDF, emails both files to the tenant's management and fires the
// report.ready webhooks.
package report
