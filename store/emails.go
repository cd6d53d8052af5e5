package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Email statuses. 'sending' is the only one that is not final.
const (
	EmailSending    = "sending"    // claimed by an attempt, or left by one that failed transiently or crashed
	EmailSent       = "sent"       // the SMTP server accepted the message
	EmailFailed     = "failed"     // refused for good (5xx); not retried
	EmailSuppressed = "suppressed" // not sent: the recipient is on the suppression list
)

// Email is a row of emails: one email to one recipient, identified by its
// dedupe key within its tenant.
type Email struct {
	ID          int64
	TenantID    int64
	DedupeKey   string
	Template    string
	Recipient   string
	SubjectType string
	SubjectID   int64
	EventID     int64
	Status      string
	MessageID   string
	MailSubject string // the Subject header sent
	Attempts    int
	LastError   string
	LeaseUntil  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	SentAt      *time.Time
}

// Final reports whether the email needs no more attempts.
func (e Email) Final() bool { return e.Status != EmailSending }

// EmailClaim is the outcome of ClaimEmail.
type EmailClaim int

// Claim outcomes.
const (
	// EmailClaimed: the caller holds the email until its lease ends and
	// sends it.
	EmailClaimed EmailClaim = iota + 1
	// EmailDone: the email is final (sent, failed or suppressed); nothing to do.
	EmailDone
	// EmailBusy: another attempt holds the email until LeaseUntil.
	EmailBusy
	// EmailRecipientSuppressed: the recipient is suppressed; the email is
	// recorded as 'suppressed' and not sent.
	EmailRecipientSuppressed
)

func (c EmailClaim) String() string {
	switch c {
	case EmailClaimed:
		return "claimed"
	case EmailDone:
		return "done"
	case EmailBusy:
		return "busy"
	case EmailRecipientSuppressed:
		return "recipient suppressed"
	}
	return fmt.Sprintf("EmailClaim(%d)", int(c))
}

func dedupeHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NormalizeEmailAddress is the form addresses are compared and suppressed in.
func NormalizeEmailAddress(addr string) string { return strings.ToLower(strings.TrimSpace(addr)) }

const emailCols = `id, tenant_id, dedupe_key, template, recipient, subject_type, subject_id, event_id, status, message_id,
	mail_subject, attempts, last_error, lease_until, created_at, updated_at, sent_at`

func scanEmail(row interface{ Scan(...any) error }) (Email, error) {
	var e Email
	var lease, sent sql.NullTime
	err := row.Scan(&e.ID, &e.TenantID, &e.DedupeKey, &e.Template, &e.Recipient, &e.SubjectType, &e.SubjectID, &e.EventID, &e.Status,
		&e.MessageID, &e.MailSubject, &e.Attempts, &e.LastError, &lease, &e.CreatedAt, &e.UpdatedAt, &sent)
	if lease.Valid {
		e.LeaseUntil = &lease.Time
	}
	if sent.Valid {
		e.SentAt = &sent.Time
	}
	return e, err
}

// GetEmail loads the email of a tenant with a dedupe key.
func GetEmail(ctx context.Context, q Querier, tenantID int64, dedupeKey string) (Email, error) {
	e, err := scanEmail(q.QueryRowContext(ctx, `SELECT `+emailCols+` FROM emails WHERE tenant_id = ? AND dedupe_hash = ?`,
		tenantID, dedupeHash(dedupeKey)))
	return e, mapErr(err, "get email "+dedupeKey)
}

// ListEmailsBySubject returns the emails about one subject (e.g. a purchase
// order), oldest first.
func ListEmailsBySubject(ctx context.Context, q Querier, tenantID int64, subjectType string, subjectID int64) ([]Email, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+emailCols+` FROM emails WHERE tenant_id = ? AND subject_type = ? AND subject_id = ? ORDER BY id`,
		tenantID, subjectType, subjectID)
	if err != nil {
		return nil, fmt.Errorf("list emails of %s %d: %w", subjectType, subjectID, err)
	}
	defer rows.Close()
	out := []Email{}
	for rows.Next() {
		e, err := scanEmail(rows)
		if err != nil {
			return nil, fmt.Errorf("scan email: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list emails of %s %d: %w", subjectType, subjectID, err)
	}
	return out, nil
}

// ClaimEmail takes the right to send an email before any SMTP conversation:
//
//   - no row yet: it inserts one (status 'sending', attempts 1, leased until
//     now+lease) and returns EmailClaimed;
//   - a 'sending' row whose lease ran out (an attempt that failed
//     transiently, or crashed): it takes the row over (attempts+1, new lease)
//     and returns EmailClaimed — the email is sent again, with the Message-ID
//     stored in the row;
//   - a 'sending' row still leased: EmailBusy (another attempt is at it);
//   - a final row (sent, failed, suppressed): EmailDone;
//   - a recipient on the tenant's suppression list: it records the email as
//     'suppressed' (RecordSuppressedEmail) and returns
//     EmailRecipientSuppressed.
//
// The usual case, a new email to a recipient not suppressed, is one
// statement: the INSERT itself checks the suppression list.
//
// e carries the identity and description of the email (TenantID, DedupeKey,
// Template, Recipient, Subject*, EventID, MessageID, MailSubject); the stored
// row is returned.
func ClaimEmail(ctx context.Context, q Querier, e Email, lease time.Duration) (Email, EmailClaim, error) {
	ts := now()
	until := ts.Add(lease)
	hash := dedupeHash(e.DedupeKey)
	res, err := q.ExecContext(ctx, `INSERT INTO emails (tenant_id, dedupe_hash, dedupe_key, template, recipient, subject_type, subject_id, event_id,
		status, message_id, mail_subject, attempts, lease_until, created_at, updated_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ? FROM DUAL
		WHERE NOT EXISTS (SELECT 1 FROM email_suppressions WHERE tenant_id = ? AND address = ?)
		ON DUPLICATE KEY UPDATE id = id`,
		e.TenantID, hash, e.DedupeKey, e.Template, e.Recipient, e.SubjectType, e.SubjectID, e.EventID, EmailSending, e.MessageID,
		clipEmailText(e.MailSubject, 500), until, ts, ts, e.TenantID, NormalizeEmailAddress(e.Recipient))
	if err != nil {
		return Email{}, 0, mapErr(err, "claim email "+e.DedupeKey)
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return Email{}, 0, fmt.Errorf("claim email %s: %w", e.DedupeKey, err)
	}
	if inserted == 1 { // a new row: everything in it is known, no read back
		id, err := res.LastInsertId()
		if err != nil {
			return Email{}, 0, fmt.Errorf("claim email %s: %w", e.DedupeKey, err)
		}
		row := e
		row.ID, row.Status, row.MailSubject, row.Attempts, row.LastError = id, EmailSending, clipEmailText(e.MailSubject, 500), 1, ""
		row.LeaseUntil, row.CreatedAt, row.UpdatedAt, row.SentAt = &until, ts, ts, nil
		return row, EmailClaimed, nil
	}
	// The row exists, or the recipient is suppressed.
	pre, err := CheckEmail(ctx, q, e.TenantID, e.DedupeKey, e.Recipient)
	if err != nil {
		return Email{}, 0, err
	}
	if pre.Suppressed && !pre.Final() {
		row, err := RecordSuppressedEmail(ctx, q, e, "recipient suppressed: "+pre.SuppressedReason)
		if err != nil {
			return Email{}, 0, err
		}
		return row, EmailRecipientSuppressed, nil
	}
	// Take the row over if its lease ran out.
	outcome := EmailClaimed
	res, err = q.ExecContext(ctx, `UPDATE emails SET attempts = attempts + 1, lease_until = ?, updated_at = ?,
		mail_subject = IF(? <> '', ?, mail_subject)
		WHERE tenant_id = ? AND dedupe_hash = ? AND status = ? AND (lease_until IS NULL OR lease_until <= ?)`,
		until, ts, clipEmailText(e.MailSubject, 500), clipEmailText(e.MailSubject, 500), e.TenantID, hash, EmailSending, ts)
	if err != nil {
		return Email{}, 0, fmt.Errorf("take over email %s: %w", e.DedupeKey, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Email{}, 0, fmt.Errorf("take over email %s: %w", e.DedupeKey, err)
	}
	if n != 1 {
		outcome = 0 // decided from the row below
	}
	row, err := GetEmail(ctx, q, e.TenantID, e.DedupeKey)
	if err != nil {
		return Email{}, 0, err
	}
	if outcome == 0 {
		outcome = EmailBusy
		if row.Final() {
			outcome = EmailDone
		}
	}
	return row, outcome, nil
}

// MarkEmailSent records that the SMTP server accepted the emails.
func MarkEmailSent(ctx context.Context, q Querier, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	ts := now()
	args := appendIDs([]any{EmailSent, ts, ts, EmailSending}, ids)
	_, err := q.ExecContext(ctx, `UPDATE emails SET status = ?, sent_at = ?, updated_at = ?, lease_until = NULL, last_error = ''
		WHERE status = ? AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("mark %d emails sent: %w", len(ids), err)
	}
	return nil
}

// MarkEmailFailed records a permanent refusal: the email is not retried.
func MarkEmailFailed(ctx context.Context, q Querier, id int64, reason string) error {
	_, err := q.ExecContext(ctx, `UPDATE emails SET status = ?, last_error = ?, updated_at = ?, lease_until = NULL
		WHERE id = ? AND status = ?`, EmailFailed, clipEmailText(reason, 1000), now(), id, EmailSending)
	if err != nil {
		return fmt.Errorf("mark email %d failed: %w", id, err)
	}
	return nil
}

// ReleaseEmail ends an attempt that failed transiently: the email stays
// 'sending' with its lease ended, so the next attempt takes it over at once.
func ReleaseEmail(ctx context.Context, q Querier, id int64, reason string) error {
	ts := now()
	_, err := q.ExecContext(ctx, `UPDATE emails SET last_error = ?, updated_at = ?, lease_until = ?
		WHERE id = ? AND status = ?`, clipEmailText(reason, 1000), ts, ts, id, EmailSending)
	if err != nil {
		return fmt.Errorf("release email %d: %w", id, err)
	}
	return nil
}

// RecordSuppressedEmail records an email that is not sent because its
// recipient is suppressed. A row already final is left as it is; a row left
// 'sending' becomes 'suppressed'.
func RecordSuppressedEmail(ctx context.Context, q Querier, e Email, reason string) (Email, error) {
	ts := now()
	reason = clipEmailText(reason, 1000)
	_, err := q.ExecContext(ctx, `INSERT INTO emails (tenant_id, dedupe_hash, dedupe_key, template, recipient, subject_type, subject_id, event_id,
		status, message_id, mail_subject, attempts, last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
		ON DUPLICATE KEY UPDATE last_error = IF(status = ?, ?, last_error), lease_until = IF(status = ?, NULL, lease_until),
			updated_at = IF(status = ?, ?, updated_at), status = IF(status = ?, ?, status)`,
		e.TenantID, dedupeHash(e.DedupeKey), e.DedupeKey, e.Template, e.Recipient, e.SubjectType, e.SubjectID, e.EventID,
		EmailSuppressed, e.MessageID, clipEmailText(e.MailSubject, 500), reason, ts, ts,
		EmailSending, reason, EmailSending, EmailSending, ts, EmailSending, EmailSuppressed)
	if err != nil {
		return Email{}, mapErr(err, "record suppressed email "+e.DedupeKey)
	}
	return GetEmail(ctx, q, e.TenantID, e.DedupeKey)
}

// EmailSuppression is an address a tenant's emails are no longer sent to.
type EmailSuppression struct {
	TenantID  int64
	Address   string
	Reason    string
	EmailID   int64 // the email whose refusal caused it, if any
	CreatedAt time.Time
}

// SuppressEmailAddress puts an address on the tenant's suppression list. An
// address already there keeps its first reason.
func SuppressEmailAddress(ctx context.Context, q Querier, tenantID int64, address, reason string, emailID int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO email_suppressions (tenant_id, address, reason, email_id, created_at)
		VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`,
		tenantID, NormalizeEmailAddress(address), clipEmailText(reason, 1000), nullID(emailID), now())
	if err != nil {
		return fmt.Errorf("suppress email address: %w", err)
	}
	return nil
}

// EmailPrecheck is the status of the email recorded under a dedupe key
// ("" when none is) and the suppression of its recipient, if any: what
// decides an email:send task that cannot compose its email, and what
// ClaimEmail reads when its INSERT did not claim.
type EmailPrecheck struct {
	Status           string
	Suppressed       bool
	SuppressedReason string
}

// Final reports whether an earlier task finished the email (sent, refused
// or suppressed): nothing is left to do.
func (c EmailPrecheck) Final() bool { return c.Status != "" && c.Status != EmailSending }

// CheckEmail reads, in one statement, the status of the email recorded
// under dedupeKey and whether its recipient is suppressed.
func CheckEmail(ctx context.Context, q Querier, tenantID int64, dedupeKey, address string) (EmailPrecheck, error) {
	var status, reason sql.NullString
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT status FROM emails WHERE tenant_id = ? AND dedupe_hash = ?),
		(SELECT reason FROM email_suppressions WHERE tenant_id = ? AND address = ?)`,
		tenantID, dedupeHash(dedupeKey), tenantID, NormalizeEmailAddress(address)).Scan(&status, &reason)
	if err != nil {
		return EmailPrecheck{}, fmt.Errorf("check email %s: %w", dedupeKey, err)
	}
	return EmailPrecheck{Status: status.String, Suppressed: reason.Valid, SuppressedReason: reason.String}, nil
}

// GetEmailSuppression returns the suppression of an address, or ErrNotFound.
func GetEmailSuppression(ctx context.Context, q Querier, tenantID int64, address string) (EmailSuppression, error) {
	var s EmailSuppression
	var emailID sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT tenant_id, address, reason, email_id, created_at FROM email_suppressions
		WHERE tenant_id = ? AND address = ?`, tenantID, NormalizeEmailAddress(address)).
		Scan(&s.TenantID, &s.Address, &s.Reason, &emailID, &s.CreatedAt)
	s.EmailID = emailID.Int64
	return s, mapErr(err, "get email suppression")
}

// DeleteEmailSuppression takes an address off the suppression list (after
// the recipient fixed its mailbox); a missing entry is ErrNotFound.
func DeleteEmailSuppression(ctx context.Context, q Querier, tenantID int64, address string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM email_suppressions WHERE tenant_id = ? AND address = ?`, tenantID, NormalizeEmailAddress(address))
	if err != nil {
		return fmt.Errorf("delete email suppression: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete email suppression: %w", err)
	} else if n == 0 {
		return fmt.Errorf("delete email suppression: %w", ErrNotFound)
	}
	return nil
}

// WebhookEndpointNotice is what an email says about a webhook endpoint.
type WebhookEndpointNotice struct {
	URL            string
	DisabledReason string
}

// GetWebhookEndpointNotice reads the URL and disabled reason of a webhook
// endpoint for an email. The webhook_endpoints table belongs to the webhooks
// feature; while it (or the row) is missing this returns ErrNotFound and the
// email falls back to a generic text.
func GetWebhookEndpointNotice(ctx context.Context, q Querier, tenantID, id int64) (WebhookEndpointNotice, error) {
	var n WebhookEndpointNotice
	var reason sql.NullString
	err := q.QueryRowContext(ctx, `SELECT url, disabled_reason FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id).
		Scan(&n.URL, &reason)
	n.DisabledReason = reason.String
	var me *mysql.MySQLError
	if errors.As(err, &me) && (me.Number == 1146 || me.Number == 1054) { // no such table, no such column
		return n, fmt.Errorf("get webhook endpoint %d: %s: %w", id, me.Message, ErrNotFound)
	}
	return n, mapErr(err, fmt.Sprintf("get webhook endpoint %d", id))
}

// clipEmailText cuts s to at most n runes (VARCHAR lengths count characters).
func clipEmailText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
