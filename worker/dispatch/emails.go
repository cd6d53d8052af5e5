package dispatch

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// emailEffects lists the emails an event causes, one task per (template,
// recipient), addressed from the current tenant settings and vendor row:
//
//	purchase_order.created  the vendor (order PDF attached); accounting and management
//	invoice.created         accounting
//	payment.recorded        the vendor (remittance advice); accounting
//	report.ready            management (report PDF and CSV attached)
//
// (The webhook worker enqueues webhook_endpoint_disabled emails itself.)
//
// Addresses are trimmed and lower-cased, invalid ones skipped, and each
// appears once per template, so the TaskID (from the dedupe key) is stable.
//
// The tenant and the vendor's address come with the event (d): the vendor
// gets no email when the event names no vendor of the tenant, and an event
// whose tenant is gone has no emails; its other effects go on either way.
func (h *Handler) emailEffects(d store.EventForDispatch) ([]Effect, error) {
	ev := d.Event
	switch ev.Type {
	case store.EventPurchaseOrderCreated, store.EventInvoiceCreated, store.EventPaymentRecorded, store.EventReportReady:
	default:
		return nil, nil
	}
	var b eventBody // its vendor_id is read with the event: d.VendorEmail
	if err := json.Unmarshal(ev.Payload, &b); err != nil {
		return nil, tasks.Permanent(fmt.Errorf("decode %s payload of event %d: %w", ev.Type, ev.ID, err))
	}
	if d.Tenant == nil {
		return nil, nil // nobody to write to
	}
	tenant, vendor := d.Tenant, d.VendorEmail
	var out []Effect
	send := func(template, subjectType string, version int, to ...string) {
		for _, addr := range emailRecipients(to...) {
			e := tasks.EmailSend{TenantID: ev.TenantID, EventID: ev.ID, Template: template, To: addr,
				SubjectType: subjectType, SubjectID: ev.AggregateID, Version: version}
			out = append(out, Effect{Payload: e, TaskID: e.TaskID()})
		}
	}
	accounting := tenant.Settings.AccountingEmails
	switch ev.Type {
	case store.EventPurchaseOrderCreated:
		version := max(b.Version, 1)
		send(tasks.EmailPurchaseOrderVendor, store.DocPurchaseOrder, version, vendor)
		send(tasks.EmailPurchaseOrderCreated, store.DocPurchaseOrder, version, append(append([]string{}, accounting...), tenant.Settings.ManagementEmails...)...)
	case store.EventInvoiceCreated:
		send(tasks.EmailInvoiceCreated, store.DocInvoice, 0, accounting...)
	case store.EventReportReady:
		send(tasks.EmailReportReady, store.DocReport, max(b.Version, 1), tenant.Settings.ManagementEmails...)
	case store.EventPaymentRecorded:
		send(tasks.EmailPaymentRemittance, "payment", 0, vendor)
		send(tasks.EmailPaymentRecorded, "payment", 0, accounting...)
	}
	return out, nil
}

// emailRecipients normalizes addresses and drops empty, invalid and repeated ones.
func emailRecipients(addrs ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range addrs {
		a = store.NormalizeEmailAddress(a)
		if a == "" || seen[a] {
			continue
		}
		if p, err := mail.ParseAddress(a); err != nil || p.Address != a || strings.ContainsAny(a, " <>") {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}
