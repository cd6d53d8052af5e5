package email

import (
	"strings"
	"testing"

	"github.com/iacc/iacc/tasks"
)

func sampleData() Data {
	return Data{
		Recipient: "ap@acme.test", ReplyTo: "ap@acme.test", AttachmentName: "PO-000042.pdf",
		Tenant: TenantData{Name: "Acme <Holdings> & Co"},
		Vendor: VendorData{Name: `Globex "<script>alert(1)</script>"`, Email: "orders@globex.test"},
		Order: &OrderData{Number: "PO-000042", Status: "submitted", Date: "2024-05-17", Total: "EUR 1234.50", Notes: "Dock 3\n<b>fragile</b>",
			Items: []ItemData{{No: 1, Description: "Paper & <ink>", Quantity: "2", UnitPrice: "24.25", LineTotal: "48.50"}}},
		Invoice: &InvoiceData{Number: "INV-000007", VendorReference: "GX-1", OrderNumber: "PO-000042", Status: "partially_paid",
			DueDate: "2024-06-30", Amount: "EUR 100.00", Paid: "EUR 40.00", Outstanding: "EUR 60.00"},
		Payment:  &PaymentData{Amount: "EUR 40.00", PaidAt: "2024-06-01", Reference: "SEPA-1"},
		Endpoint: &EndpointData{ID: 3, URL: "https://hooks.example.com/a?b=<c>", Reason: "deliveries to it kept failing."},
		Notice:   &NoticeData{Title: "Backup\nfailed", Body: "line one\nline <two>\n\nsecond paragraph"},
		Report:   &ReportData{Day: "2024-06-01", Orders: []string{"3 orders, EUR 350.50"}, Overdue: 1},
	}
}

// Every template renders a one-line subject, a text body without HTML and
// an HTML document in which what came from users is escaped.
func TestTemplatesRender(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range TemplateNames() {
		r, err := tpl.Render(name, sampleData())
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") || strings.Contains(r.Subject, "  ") {
			t.Errorf("%s: subject %q", name, r.Subject)
		}
		for _, out := range []string{r.Subject, r.Text, r.HTML} {
			if strings.Contains(out, "<no value>") || strings.Contains(out, "%!") {
				t.Errorf("%s: output with a missing value:\n%s", name, out)
			}
		}
		if strings.Contains(r.Text, "<p>") || strings.Contains(r.Text, "&lt;") || !strings.Contains(r.Text, "sent automatically by iacc for Acme <Holdings> & Co") {
			t.Errorf("%s: text part:\n%s", name, r.Text)
		}
		if !strings.HasPrefix(r.HTML, "<!DOCTYPE html>") || strings.Contains(r.HTML, "<script>") || strings.Contains(r.HTML, "<Holdings>") ||
			strings.Contains(r.HTML, "<b>fragile") || strings.Contains(r.HTML, "<two>") || strings.Contains(r.HTML, "<c>") ||
			!strings.Contains(r.HTML, "Acme &lt;Holdings&gt; &amp; Co") {
			t.Errorf("%s: HTML part not escaped:\n%s", name, r.HTML)
		}
	}
	r, err := tpl.Render(tasks.EmailNotice, sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Backup failed" || !strings.Contains(r.HTML, "<p>line one<br>line &lt;two&gt;</p>") || !strings.Contains(r.HTML, "<p>second paragraph</p>") {
		t.Errorf("notice: %q\n%s", r.Subject, r.HTML)
	}
	if _, err := tpl.Render("poem", sampleData()); err == nil {
		t.Error("unknown template rendered")
	}
	// A template whose data is missing fails instead of sending a hole.
	d := sampleData()
	d.Order = nil
	if _, err := tpl.Render(tasks.EmailPurchaseOrderVendor, d); err == nil {
		t.Error("order template rendered without an order")
	}
}

func TestMessageIDIsDeterministic(t *testing.T) {
	t.Parallel()
	a := MessageID(1, "evt-5:notice:a@x.test", "iacc.test")
	if a != MessageID(1, "evt-5:notice:a@x.test", "iacc.test") {
		t.Fatal("same key, different Message-IDs")
	}
	local, domain, _ := strings.Cut(a, "@")
	if len(local) != 32 || domain != "iacc.test" {
		t.Errorf("Message-ID %q", a)
	}
	for _, other := range []string{MessageID(2, "evt-5:notice:a@x.test", "iacc.test"), MessageID(1, "evt-5:notice:b@x.test", "iacc.test")} {
		if other == a {
			t.Errorf("different emails share Message-ID %s", a)
		}
	}
}

func TestSubjectLine(t *testing.T) {
	t.Parallel()
	if got := oneLine(" a\r\n\tb  c ", 250); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine(strings.Repeat("é", 300), 10); got != strings.Repeat("é", 9)+"…" {
		t.Errorf("long subject = %q", got)
	}
}
