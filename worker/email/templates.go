package email

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"github.com/iacc/iacc/tasks"
)

//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

// TemplateNames lists the templates the handler knows. Each has
// templates/NAME.txt (text/template defining "subject" and "content") and
// templates/NAME.html (html/template defining "content"), wrapped by
// layout.txt and layout.html.
func TemplateNames() []string {
	return []string{
		tasks.EmailPurchaseOrderVendor, tasks.EmailPurchaseOrderCreated, tasks.EmailInvoiceCreated,
		tasks.EmailPaymentRemittance, tasks.EmailPaymentRecorded, tasks.EmailWebhookDisabled, tasks.EmailNotice, tasks.EmailReportReady,
	}
}

// Data is what the templates see. Money and dates are preformatted
// ("EUR 233.97", "2024-05-17"). Only the parts of the template's subject
// are set.
type Data struct {
	Subject        string // the rendered subject (the HTML title)
	Recipient      string
	ReplyTo        string // set when replies go to the tenant's accounting address
	AttachmentName string
	Tenant         TenantData
	Vendor         VendorData
	Order          *OrderData
	Invoice        *InvoiceData
	Payment        *PaymentData
	Endpoint       *EndpointData
	Notice         *NoticeData
	Report         *ReportData
}

// ReportData describes a nightly report.
type ReportData struct {
	Day      string
	Orders   []string // "3 orders, 350.50 EUR" per currency
	Invoices []string
	Payments []string
	Overdue  int
}

// TenantData describes the sending organisation.
type TenantData struct{ Name string }

// VendorData describes the vendor.
type VendorData struct{ Name, Email string }

// OrderData describes a purchase order.
type OrderData struct {
	Number, Status, Date, Total, Notes string
	Items                              []ItemData
}

// ItemData is one line of an order.
type ItemData struct {
	No                                          int
	Description, Quantity, UnitPrice, LineTotal string
}

// InvoiceData describes an invoice.
type InvoiceData struct {
	Number, VendorReference, OrderNumber, Status, DueDate string
	Amount, Paid, Outstanding                             string
	FullyPaid                                             bool
}

// PaymentData describes a payment.
type PaymentData struct{ Amount, PaidAt, Reference string }

// EndpointData describes a webhook endpoint; URL is empty when unknown.
type EndpointData struct {
	ID          int64
	URL, Reason string
}

// NoticeData is the free text of the notice template.
type NoticeData struct{ Title, Body string }

// Rendered is a rendered email.
type Rendered struct {
	Subject, Text, HTML string
}

// Templates renders the embedded templates.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// templateFuncs are the helpers templates may call.
func templateFuncs() map[string]any {
	return map[string]any{
		// lines splits text on line breaks (notes and notice bodies in HTML).
		"lines": func(s string) []string {
			return strings.Split(strings.ReplaceAll(strings.TrimRight(s, "\r\n"), "\r\n", "\n"), "\n")
		},
		// paragraphs splits text on blank lines.
		"paragraphs": func(s string) []string {
			var out []string
			for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
				if p = strings.Trim(p, "\n"); strings.TrimSpace(p) != "" {
					out = append(out, p)
				}
			}
			return out
		},
	}
}

// ParseTemplates parses every embedded template.
func ParseTemplates() (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range TemplateNames() {
		tt, err := texttemplate.New(name).Funcs(templateFuncs()).Option("missingkey=error").
			ParseFS(templateFS, "templates/layout.txt", "templates/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse email template %s.txt: %w", name, err)
		}
		if tt.Lookup("subject") == nil || tt.Lookup("content") == nil {
			return nil, fmt.Errorf("email template %s.txt must define subject and content", name)
		}
		ht, err := htmltemplate.New(name).Funcs(templateFuncs()).Option("missingkey=error").
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse email template %s.html: %w", name, err)
		}
		if ht.Lookup("content") == nil {
			return nil, fmt.Errorf("email template %s.html must define content", name)
		}
		t.text[name], t.html[name] = tt, ht
	}
	return t, nil
}

// Has reports whether name is a known template.
func (t *Templates) Has(name string) bool { _, ok := t.text[name]; return ok }

// Render renders the subject, the plain-text and the HTML body of a template.
func (t *Templates) Render(name string, d Data) (Rendered, error) {
	tt, ok := t.text[name]
	if !ok {
		return Rendered{}, fmt.Errorf("unknown email template %q", name)
	}
	var b bytes.Buffer
	if err := tt.ExecuteTemplate(&b, "subject", d); err != nil {
		return Rendered{}, fmt.Errorf("render subject of %s: %w", name, err)
	}
	r := Rendered{Subject: oneLine(b.String(), 250)}
	d.Subject = r.Subject
	b.Reset()
	if err := tt.ExecuteTemplate(&b, "layout", d); err != nil {
		return Rendered{}, fmt.Errorf("render text of %s: %w", name, err)
	}
	r.Text = b.String()
	b.Reset()
	if err := t.html[name].ExecuteTemplate(&b, "layout", d); err != nil {
		return Rendered{}, fmt.Errorf("render HTML of %s: %w", name, err)
	}
	r.HTML = b.String()
	return r, nil
}

// oneLine collapses whitespace (line breaks included: a subject is one
// header line) and cuts s to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
