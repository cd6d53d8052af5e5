package tasks

import (
	"fmt"
	"time"
)

// EmailSend sends one email to one recipient. The handler renders the
// template from the current state of the subject in MySQL and records the
// email under its dedupe key, so a duplicate task sends nothing.
type EmailSend struct {
	TenantID int64  `json:"tenant_id"`
	EventID  int64  `json:"event_id,omitempty"`
	Template string `json:"template"` // e.g. "purchase_order_vendor"
	To       string `json:"to"`
	// Subject of the email: what it is about (e.g. "purchase_order", 42).
	SubjectType string `json:"subject_type"`
	SubjectID   int64  `json:"subject_id"`
	// Key deduplicates emails that no event caused (alerts, notices);
	// emails of an event are keyed by (event, template, recipient).
	Key string `json:"key,omitempty"`
	// Version of the subject the email was caused at (the document version
	// to attach: a purchase order's PDF of that version or a later one).
	Version int `json:"version,omitempty"`
	// Title and Body are the subject line and plain-text body of the
	// generic "notice" template (alerts, reports); other templates render
	// their text from MySQL and ignore them.
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// Email templates (EmailSend.Template) and who receives them.
const (
	EmailPurchaseOrderVendor  = "purchase_order_vendor"     // the vendor: the order, its PDF attached
	EmailPurchaseOrderCreated = "purchase_order_created"    // accounting and management: a new order
	EmailInvoiceCreated       = "invoice_created"           // accounting: a new invoice
	EmailPaymentRemittance    = "payment_remittance"        // the vendor: remittance advice
	EmailPaymentRecorded      = "payment_recorded"          // accounting: a payment recorded
	EmailWebhookDisabled      = "webhook_endpoint_disabled" // tenant admins: SubjectID is the endpoint
	EmailReportReady          = "report_ready"              // management: the nightly report, PDF and CSV attached
	EmailNotice               = "notice"                    // anyone: Title and Body from the payload, Key required
)

// Kind implements Payload.
func (EmailSend) Kind() string { return "email:send" }

// Options implements Payload.
func (EmailSend) Options() Options {
	return Options{Queue: QueueDefault, MaxRetry: 12, Timeout: time.Minute, Retention: EffectRetention}
}

// AttachesDocument reports whether the email attaches its subject's PDF
// (dispatch then chains it on the render: PDFRender.Then).
func (e EmailSend) AttachesDocument() bool {
	return e.Template == EmailPurchaseOrderVendor || e.Template == EmailReportReady
}

// DedupeKey identifies the email across retries and duplicate tasks.
func (e EmailSend) DedupeKey() string {
	if e.EventID != 0 {
		return fmt.Sprintf("evt-%d:%s:%s", e.EventID, e.Template, e.To)
	}
	return e.Key + ":" + e.Template + ":" + e.To
}

// TaskID is deterministic per email.
func (e EmailSend) TaskID() string { return "email-" + hashID(e.DedupeKey()) }
