package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"
	gomail "github.com/wneessen/go-mail"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Subject types of the templates (EmailSend.SubjectType).
const (
	SubjectPurchaseOrder   = "purchase_order"
	SubjectInvoice         = "invoice"
	SubjectPayment         = "payment"
	SubjectWebhookEndpoint = "webhook_endpoint"
	SubjectReport          = "report"
)

// subjectTypes is what each template is about ("" : anything).
func subjectType(template string) string {
	switch template {
	case tasks.EmailPurchaseOrderVendor, tasks.EmailPurchaseOrderCreated:
		return SubjectPurchaseOrder
	case tasks.EmailInvoiceCreated:
		return SubjectInvoice
	case tasks.EmailPaymentRemittance, tasks.EmailPaymentRecorded:
		return SubjectPayment
	case tasks.EmailWebhookDisabled:
		return SubjectWebhookEndpoint
	case tasks.EmailReportReady:
		return SubjectReport
	}
	return ""
}

// maxAttachment bounds an attachment read into memory.
const maxAttachment = 20 << 20

// DefaultLease is how long an attempt holds an email before another may
// take it over: longer than the task timeout (an attempt cannot run longer;
// its context ends and closes the connection), so a live attempt is never
// overtaken.
const DefaultLease = 90 * time.Second

// Handler handles email:send.
type Handler struct {
	db     *store.DB
	blobs  blob.Store
	mailer *Mailer
	tpl    *Templates
	log    *slog.Logger
	lease  time.Duration
	// sent marks emails sent, concurrent ones in one UPDATE.
	sent *store.Coalescer[int64, struct{}]
	// Metrics counts emails by result (sent, failed, suppressed, retry).
	Metrics *metrics.Set
}

func (h *Handler) count(result string) {
	if h.Metrics != nil {
		h.Metrics.Emails.WithLabelValues(result).Inc()
	}
}

// NewHandler returns the email:send handler. A nil mailer (no SMTP server
// configured) makes every email fail transiently: the tasks wait in their
// retry schedule and nothing is lost. It panics if the embedded templates
// do not parse (a build defect the tests catch).
func NewHandler(db *store.DB, blobs blob.Store, mailer *Mailer, log *slog.Logger) *Handler {
	tpl, err := ParseTemplates()
	if err != nil {
		panic(err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{db: db, blobs: blobs, mailer: mailer, tpl: tpl, log: log, lease: DefaultLease,
		sent: store.NewMarker(db, store.MarkEmailSent)}
}

// MessageID is the Message-ID (without angle brackets) of the email with a
// dedupe key: the same on every attempt, so receivers can drop a copy sent
// again after a crash.
func MessageID(tenantID int64, dedupeKey, domain string) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(tenantID, 10) + "/" + dedupeKey))
	return hex.EncodeToString(sum[:16]) + "@" + domain
}

// Handle implements the email:send task; see the package documentation.
func (h *Handler) Handle(ctx context.Context, p tasks.EmailSend, _ *asynq.Task) error {
	if err := h.validate(p); err != nil {
		return tasks.Permanent(fmt.Errorf("email:send %s: %w", p.Template, err))
	}
	if h.mailer == nil {
		return errors.New("email:send: no SMTP server configured (IACC_SMTP_URL)")
	}
	key := p.DedupeKey()
	row := store.Email{
		TenantID: p.TenantID, DedupeKey: key, Template: p.Template, Recipient: p.To, SubjectType: p.SubjectType,
		SubjectID: p.SubjectID, EventID: p.EventID, MessageID: "<" + MessageID(p.TenantID, key, h.mailer.Domain()) + ">",
	}
	c, err := h.compose(ctx, p)
	if err != nil {
		return h.composeFailed(ctx, p, row, err)
	}
	row.MailSubject = c.Subject
	claimed, outcome, err := store.ClaimEmail(ctx, h.db, row, h.lease)
	if err != nil {
		return err
	}
	switch outcome {
	case store.EmailDone:
		return nil // sent (or refused, or suppressed) by an earlier task
	case store.EmailRecipientSuppressed:
		h.suppressed(ctx, p, claimed)
		return nil
	case store.EmailBusy:
		wait := time.Second
		if claimed.LeaseUntil != nil {
			wait = max(wait, time.Until(*claimed.LeaseUntil))
		}
		return tasks.RetryIn(wait, fmt.Errorf("email %d (%s) is being sent by another attempt", claimed.ID, p.Template))
	}

	msg, err := h.message(p, claimed, c)
	// Outcomes are recorded even when ctx ended mid-send.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		_ = store.MarkEmailFailed(rctx, h.db, claimed.ID, err.Error())
		return tasks.Permanent(err)
	}
	sendErr := h.mailer.Send(ctx, msg)
	if sendErr == nil {
		if _, err := h.sent.Do(rctx, claimed.ID); err != nil {
			// The server has the message; the row stays 'sending' and the
			// next attempt, after the lease, sends it again with the same
			// Message-ID (the documented boundary).
			return err
		}
		h.log.InfoContext(ctx, "email sent", "tenant_id", p.TenantID, "template", p.Template, "email_id", claimed.ID,
			"message_id", claimed.MessageID, "attempt", claimed.Attempts)
		h.count("sent")
		return nil
	}
	ref := Classify(sendErr)
	if ref.Permanent {
		err := h.db.InTx(rctx, func(tx *sql.Tx) error {
			if err := store.MarkEmailFailed(rctx, tx, claimed.ID, sendErr.Error()); err != nil {
				return err
			}
			if !ref.Recipient {
				return nil
			}
			return store.SuppressEmailAddress(rctx, tx, p.TenantID, p.To, sendErr.Error(), claimed.ID)
		})
		if err != nil {
			return fmt.Errorf("record the refusal of email %d: %w", claimed.ID, err)
		}
		h.log.WarnContext(ctx, "email refused", "tenant_id", p.TenantID, "template", p.Template, "email_id", claimed.ID,
			"smtp_code", ref.Code, "recipient_suppressed", ref.Recipient)
		h.count("failed")
		return tasks.Permanent(fmt.Errorf("email %d (%s) to %s refused: %w", claimed.ID, p.Template, p.To, sendErr))
	}
	h.count("retry")
	if err := store.ReleaseEmail(rctx, h.db, claimed.ID, sendErr.Error()); err != nil {
		h.log.WarnContext(ctx, "release email", "email_id", claimed.ID, "err", err) // its lease runs out by itself
	}
	return fmt.Errorf("email %d (%s) to %s: %w", claimed.ID, p.Template, p.To, sendErr)
}

// composeFailed decides a task whose email could not be composed (its data
// missing, its PDF not rendered yet, MySQL unreachable): an email that an
// earlier task finished, or whose recipient is suppressed, needs no data;
// any other returns the compose error.
func (h *Handler) composeFailed(ctx context.Context, p tasks.EmailSend, row store.Email, cerr error) error {
	pre, err := store.CheckEmail(ctx, h.db, p.TenantID, row.DedupeKey, p.To)
	if err != nil {
		// Retried as the read's failure: the compose error may be permanent
		// for an email that was sent already.
		return fmt.Errorf("compose email: %v; then: %w", cerr, err)
	}
	switch {
	case pre.Final():
		return nil
	case pre.Suppressed:
		rec, err := store.RecordSuppressedEmail(ctx, h.db, row, "recipient suppressed: "+pre.SuppressedReason)
		if err != nil {
			return err
		}
		h.suppressed(ctx, p, rec)
		return nil
	}
	return cerr
}

func (h *Handler) suppressed(ctx context.Context, p tasks.EmailSend, rec store.Email) {
	h.log.InfoContext(ctx, "email suppressed", "tenant_id", p.TenantID, "template", p.Template, "email_id", rec.ID)
	h.count("suppressed")
}

func (h *Handler) validate(p tasks.EmailSend) error {
	if !h.tpl.Has(p.Template) {
		return fmt.Errorf("unknown template %q", p.Template)
	}
	addr, err := netmail.ParseAddress(p.To)
	if err != nil || addr.Address != p.To {
		return fmt.Errorf("recipient %q is not a bare email address", p.To)
	}
	if want := subjectType(p.Template); want != "" {
		if p.SubjectType != want || p.SubjectID <= 0 || p.TenantID <= 0 {
			return fmt.Errorf("template %s is about a %s of a tenant, got %q %d of tenant %d", p.Template, want, p.SubjectType, p.SubjectID, p.TenantID)
		}
	}
	if p.EventID == 0 && p.Key == "" {
		return errors.New("an email needs an event or a key to deduplicate it")
	}
	if p.Template == tasks.EmailNotice && oneLine(p.Title, 250) == "" {
		return errors.New("a notice needs a title")
	}
	return nil
}

// composed is an email rendered from the current state in MySQL.
type composed struct {
	Rendered
	replyTo    string
	attachName string
	attachment []byte
	attachType gomail.ContentType
	// extra are further attachments (the report's CSV).
	extra []attachmentFile
}

type attachmentFile struct {
	name string
	data []byte
	typ  gomail.ContentType
}

// compose loads what the template shows. A subject that does not exist is
// permanent; a document not rendered yet is ErrNotReady (retried soon).
func (h *Handler) compose(ctx context.Context, p tasks.EmailSend) (composed, error) {
	var c composed
	d := Data{Recipient: p.To}
	var settings store.TenantSettings
	orderMail := p.Template == tasks.EmailPurchaseOrderVendor || p.Template == tasks.EmailPurchaseOrderCreated
	if p.TenantID > 0 && !orderMail { // an order's email loads its tenant with the order
		ten, err := store.GetTenant(ctx, h.db, p.TenantID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		d.Tenant.Name, settings = ten.Name, ten.Settings
	}
	vendorFacing := false
	switch p.Template {
	case tasks.EmailPurchaseOrderVendor, tasks.EmailPurchaseOrderCreated:
		var o store.PurchaseOrderWithPDF
		var err error
		if p.Template == tasks.EmailPurchaseOrderVendor {
			o, err = store.GetPurchaseOrderWithPDF(ctx, h.db, p.TenantID, p.SubjectID, p.Version)
		} else {
			o.Order, o.Vendor, o.Tenant, err = store.GetPurchaseOrderWithParties(ctx, h.db, p.TenantID, p.SubjectID)
		}
		if err != nil {
			return c, permanentIfMissing(err)
		}
		po := o.Order
		d.Tenant.Name, settings = o.Tenant.Name, o.Tenant.Settings
		d.Vendor, d.Order = vendorData(o.Vendor), orderData(po)
		if p.Template == tasks.EmailPurchaseOrderVendor {
			vendorFacing = true
			if err := h.attachOrderPDF(ctx, &c, p, po, o.PDF); err != nil {
				return c, err
			}
			d.AttachmentName = c.attachName
		}
	case tasks.EmailInvoiceCreated:
		inv, err := store.GetInvoice(ctx, h.db, p.TenantID, p.SubjectID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		v, err := store.GetVendor(ctx, h.db, p.TenantID, inv.VendorID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		d.Vendor, d.Invoice = vendorData(v), invoiceData(inv)
	case tasks.EmailPaymentRemittance, tasks.EmailPaymentRecorded:
		pay, err := store.GetPayment(ctx, h.db, p.TenantID, p.SubjectID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		inv, err := store.GetInvoice(ctx, h.db, p.TenantID, pay.InvoiceID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		v, err := store.GetVendor(ctx, h.db, p.TenantID, pay.VendorID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		d.Vendor, d.Invoice = vendorData(v), invoiceData(inv)
		d.Payment = &PaymentData{Amount: money(pay.Currency, pay.Amount.StringFixed(2)), PaidAt: pay.PaidAt.UTC().Format(time.DateOnly),
			Reference: pay.Reference}
		vendorFacing = p.Template == tasks.EmailPaymentRemittance
	case tasks.EmailReportReady:
		r, err := store.GetReport(ctx, h.db, p.TenantID, p.SubjectID)
		if err != nil {
			return c, permanentIfMissing(err)
		}
		d.Report = reportData(r)
		if err := h.attachReport(ctx, &c, p, r); err != nil {
			return c, err
		}
		d.AttachmentName = c.attachName
	case tasks.EmailWebhookDisabled:
		d.Endpoint = &EndpointData{ID: p.SubjectID}
		n, err := store.GetWebhookEndpointNotice(ctx, h.db, p.TenantID, p.SubjectID)
		switch {
		case err == nil:
			d.Endpoint.URL, d.Endpoint.Reason = n.URL, disabledReason(n.DisabledReason)
		case !errors.Is(err, store.ErrNotFound):
			return c, err
		}
	case tasks.EmailNotice:
		d.Notice = &NoticeData{Title: p.Title, Body: p.Body}
	}
	if vendorFacing && len(settings.AccountingEmails) > 0 {
		// A vendor's reply reaches the tenant's accounting, not a no-reply box.
		if a, err := netmail.ParseAddress(settings.AccountingEmails[0]); err == nil {
			c.replyTo, d.ReplyTo = a.Address, a.Address
		}
	}
	r, err := h.tpl.Render(p.Template, d)
	if err != nil {
		return c, tasks.Permanent(err)
	}
	c.Rendered = r
	return c, nil
}

// attachOrderPDF reads the order's PDF, doc as read with the order (see
// store.GetPurchaseOrderWithPDF): the document of the version the email was
// caused at, or, when the order moved on before that version was rendered
// (the renderer skips superseded versions), of its current version. None
// yet: the email retries soon.
func (h *Handler) attachOrderPDF(ctx context.Context, c *composed, p tasks.EmailSend, po store.PurchaseOrder, doc *store.Document) error {
	if doc == nil {
		retries, _ := asynq.GetRetryCount(ctx)
		return tasks.RetryIn(notReadyDelay(retries),
			fmt.Errorf("email %s of %s: PDF v%d not rendered yet: %w", p.Template, po.Number(), max(p.Version, po.Version), tasks.ErrNotReady))
	}
	if h.blobs == nil {
		return errors.New("email: no blob store configured")
	}
	rc, err := h.blobs.Open(ctx, doc.BlobKey)
	if err != nil {
		return fmt.Errorf("open PDF of %s: %w", po.Number(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxAttachment+1))
	if err != nil {
		return fmt.Errorf("read PDF of %s: %w", po.Number(), err)
	}
	if len(b) > maxAttachment {
		return tasks.Permanent(fmt.Errorf("PDF of %s is over %d bytes", po.Number(), maxAttachment))
	}
	if sum := sha256.Sum256(b); doc.SHA256 != "" && hex.EncodeToString(sum[:]) != doc.SHA256 {
		return fmt.Errorf("PDF of %s v%d does not match its recorded checksum", po.Number(), doc.Version)
	}
	c.attachName, c.attachment, c.attachType = po.Number()+".pdf", b, gomail.ContentType(doc.ContentType)
	if c.attachType == "" {
		c.attachType = gomail.TypeAppOctetStream
	}
	return nil
}

// notReadyDelay spaces the retries of an email waiting for its PDF: 1 s,
// 2 s, 4 s… up to 5 min, so that the task's retries (12) cover over 20
// minutes of PDF backlog instead of a minute and a half.
func notReadyDelay(retries int) time.Duration {
	if retries >= 9 {
		return 5 * time.Minute
	}
	return min(time.Second<<retries, 5*time.Minute)
}

// message builds the MIME message: multipart/alternative (text, HTML),
// inside multipart/mixed when there is an attachment.
func (h *Handler) message(p tasks.EmailSend, e store.Email, c composed) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	from := h.mailer.From()
	m.FromMailAddress(&from)
	if err := m.To(p.To); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", p.To, err)
	}
	if c.replyTo != "" {
		if err := m.ReplyTo(c.replyTo); err != nil {
			return nil, fmt.Errorf("reply-to %q: %w", c.replyTo, err)
		}
	}
	m.Subject(c.Subject)
	m.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(e.MessageID, "<"), ">"))
	m.SetDateWithValue(e.CreatedAt)
	m.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	m.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	m.SetBodyString(gomail.TypeTextPlain, c.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, c.HTML)
	if c.attachment != nil {
		if err := m.AttachReader(c.attachName, bytes.NewReader(c.attachment), gomail.WithFileContentType(c.attachType)); err != nil {
			return nil, fmt.Errorf("attach %s: %w", c.attachName, err)
		}
	}
	for _, a := range c.extra {
		if err := m.AttachReader(a.name, bytes.NewReader(a.data), gomail.WithFileContentType(a.typ)); err != nil {
			return nil, fmt.Errorf("attach %s: %w", a.name, err)
		}
	}
	return m, nil
}

// disabledReason explains the webhook feature's disabled_reason codes.
func disabledReason(code string) string {
	switch code {
	case "gone":
		return "the receiver answered 410 Gone: it no longer wants these events."
	case "failing":
		return "deliveries to it kept failing."
	case "manual":
		return "a user disabled it."
	}
	return code
}

func permanentIfMissing(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return tasks.Permanent(err)
	}
	return err
}

func money(currency, amount string) string { return currency + " " + amount }

func vendorData(v store.Vendor) VendorData { return VendorData{Name: v.Name, Email: v.Email} }

func orderData(po store.PurchaseOrder) *OrderData {
	o := &OrderData{Number: po.Number(), Status: po.Status, Date: po.CreatedAt.UTC().Format(time.DateOnly),
		Total: money(po.Currency, po.TotalAmount.StringFixed(2)), Notes: po.Notes}
	for _, it := range po.Items {
		o.Items = append(o.Items, ItemData{No: it.LineNo, Description: it.Description, Quantity: it.Quantity.Round(3).String(),
			UnitPrice: it.UnitPrice.StringFixed(2), LineTotal: it.LineTotal.StringFixed(2)})
	}
	return o
}

func invoiceData(inv store.Invoice) *InvoiceData {
	return &InvoiceData{Number: inv.Number(), VendorReference: inv.VendorReference, OrderNumber: store.FormatPONumber(inv.PurchaseOrderID),
		Status: inv.Status, DueDate: inv.DueDate.Format(time.DateOnly), Amount: money(inv.Currency, inv.Amount.StringFixed(2)),
		Paid: money(inv.Currency, inv.PaidAmount.StringFixed(2)), Outstanding: money(inv.Currency, inv.Outstanding().StringFixed(2)),
		FullyPaid: inv.Status == store.InvoicePaid}
}

// attachReport attaches the report's PDF (of the email's version, or the
// current one; not rendered yet is ErrNotReady) and its CSV.
func (h *Handler) attachReport(ctx context.Context, c *composed, p tasks.EmailSend, r store.Report) error {
	day := r.Day.Format(time.DateOnly)
	doc, err := store.GetDocument(ctx, h.db, p.TenantID, store.DocReport, r.ID, r.Version)
	if errors.Is(err, store.ErrNotFound) {
		retries, _ := asynq.GetRetryCount(ctx)
		return tasks.RetryIn(notReadyDelay(retries),
			fmt.Errorf("email %s of report %s: PDF v%d not rendered yet: %w", p.Template, day, r.Version, tasks.ErrNotReady))
	}
	if err != nil {
		return err
	}
	pdfBytes, err := h.readBlob(ctx, doc.BlobKey)
	if err != nil {
		return fmt.Errorf("report %s PDF: %w", day, err)
	}
	csvBytes, err := h.readBlob(ctx, r.CSVKey)
	if err != nil {
		return fmt.Errorf("report %s CSV: %w", day, err)
	}
	c.attachName, c.attachment, c.attachType = "report-"+day+".pdf", pdfBytes, gomail.ContentType("application/pdf")
	c.extra = append(c.extra, attachmentFile{name: "report-" + day + ".csv", data: csvBytes, typ: gomail.ContentType("text/csv")})
	return nil
}

func (h *Handler) readBlob(ctx context.Context, key string) ([]byte, error) {
	if h.blobs == nil {
		return nil, errors.New("email: no blob store configured")
	}
	rc, err := h.blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxAttachment+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAttachment {
		return nil, tasks.Permanent(fmt.Errorf("attachment %s is over %d bytes", key, maxAttachment))
	}
	return b, nil
}

// reportData sums a report's sections per currency for the email body.
func reportData(r store.Report) *ReportData {
	sum := func(rows []store.ReportRow, noun string) []string {
		type tot struct {
			n   int
			amt decimal.Decimal
		}
		by := map[string]*tot{}
		var order []string
		for _, row := range rows {
			t, ok := by[row.Currency]
			if !ok {
				t = &tot{}
				by[row.Currency] = t
				order = append(order, row.Currency)
			}
			t.n += row.Count
			if a, err := decimal.NewFromString(row.Total); err == nil {
				t.amt = t.amt.Add(a)
			}
		}
		out := []string{}
		for _, cur := range order {
			out = append(out, fmt.Sprintf("%d %s, %s", by[cur].n, noun, money(cur, by[cur].amt.StringFixed(2))))
		}
		return out
	}
	return &ReportData{Day: r.Day.Format(time.DateOnly), Orders: sum(r.Data.Orders.ByStatus, "orders"),
		Invoices: sum(r.Data.Invoices.ByStatus, "invoices"), Payments: sum(r.Data.Payments.ByVendor, "payments"), Overdue: len(r.Data.Overdue)}
}
