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
}

// Kind implements Payload.
func (EmailSend) Kind() string { return "email:send" }

// Options implements Payload.
func (EmailSend) Options() Options {
	return Options{Queue: QueueDefault, MaxRetry: 12, Timeout: time.Minute, Retention: time.Hour}
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
