package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/email/smtptest"
)

const testFrom = "Acme Purchasing <no-reply@iacc.test>"

// quiet is the tests' logger.
var quiet = slog.New(slog.DiscardHandler)

// testBundle is what a handler test works with: a private database, a blob
// directory, an SMTP server and a handler sending to it, and a tenant with
// accounting and management addresses, a vendor and an order.
type testBundle struct {
	db     *store.DB
	blobs  *blob.Dir
	srv    *smtptest.Server
	mailer *Mailer
	h      *Handler
	tenant store.Tenant
	vendor store.Vendor
	order  store.CreatedPurchaseOrder
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{db: storetest.NewDB(t), srv: smtptest.NewServer(t, smtptest.Options{})}
	var err error
	if b.blobs, err = blob.NewDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if b.mailer, err = NewMailer(Config{URL: b.srv.URL(), From: testFrom, Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	b.h = NewHandler(b.db, b.blobs, b.mailer, quiet)
	b.tenant, err = store.CreateTenant(ctx, b.db, "Acme Holdings "+t.Name(), store.TenantSettings{
		AccountingEmails: []string{"ap@acme.test", "ledger@acme.test"},
		ManagementEmails: []string{"ceo@acme.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.vendor = storetest.Vendor(t, b.db, b.tenant.ID, "Globex Supplies")
	b.order = b.newOrder(t, "Deliver to dock 3.\nCall before arrival.")
	return b
}

func (b *testBundle) newOrder(t *testing.T, notes string) store.CreatedPurchaseOrder {
	t.Helper()
	var out store.CreatedPurchaseOrder
	err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		out, err = store.CreatePurchaseOrder(context.Background(), tx, store.NewPurchaseOrder{
			TenantID: b.tenant.ID, VendorID: b.vendor.ID, Currency: "EUR", Notes: notes,
			Items: []store.PurchaseOrderItem{
				{Description: "A4 copy paper", Quantity: decimal.NewFromInt(3), UnitPrice: decimal.RequireFromString("4.99")},
				{Description: "27-inch monitor", Quantity: decimal.NewFromInt(1), UnitPrice: decimal.RequireFromString("219.00")},
			},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// orderEmail is the payload dispatch builds for an order email.
func (b *testBundle) orderEmail(template, to string) tasks.EmailSend {
	return tasks.EmailSend{TenantID: b.tenant.ID, EventID: b.order.Event.ID, Template: template, To: to,
		SubjectType: SubjectPurchaseOrder, SubjectID: b.order.Order.ID, Version: b.order.Order.Version}
}

// putPDF stores a stand-in PDF of the order's version as pdf:render would.
func (b *testBundle) putPDF(t *testing.T, po store.PurchaseOrder, version int) []byte {
	t.Helper()
	ctx := context.Background()
	body := []byte(fmt.Sprintf("%%PDF-1.4\n%% %s v%d\n%%%%EOF\n", po.Number(), version))
	key := fmt.Sprintf("tenants/%d/purchase_order/%d/v%d.pdf", po.TenantID, po.ID, version)
	size, err := b.blobs.Put(ctx, key, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if _, err := store.PutDocument(ctx, b.db, store.Document{TenantID: po.TenantID, Kind: store.DocPurchaseOrder, SubjectID: po.ID,
		Version: version, BlobKey: key, ContentType: "application/pdf", Size: size, SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	return body
}

func (b *testBundle) run(p tasks.EmailSend) error {
	return b.h.Handle(context.Background(), p, nil)
}

// runTask runs p as a task of its own (as asynq hands it over: encoded),
// through the typed adapter the worker registers.
func (b *testBundle) runTask(t *testing.T, p tasks.EmailSend) error {
	t.Helper()
	task, err := tasks.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return tasks.Handler(b.h.Handle).ProcessTask(context.Background(), task)
}

func (b *testBundle) emailRow(t *testing.T, p tasks.EmailSend) store.Email {
	t.Helper()
	e, err := store.GetEmail(context.Background(), b.db, p.TenantID, p.DedupeKey())
	if err != nil {
		t.Fatalf("email row of %s: %v", p.DedupeKey(), err)
	}
	return e
}

// part is one leaf of a parsed MIME message.
type part struct {
	ContentType string // media type, e.g. text/plain
	Params      map[string]string
	Disposition string
	Filename    string
	Body        []byte // decoded
}

// parsed is a message as a receiver sees it.
type parsed struct {
	Header   netmail.Header
	Subject  string
	MimeType string // top-level media type
	Parts    []part // leaves, depth first
	Types    []string
}

func (p parsed) partOf(mediaType string) (part, bool) {
	for _, pt := range p.Parts {
		if pt.ContentType == mediaType {
			return pt, true
		}
	}
	return part{}, false
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, raw)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	p := parsed{Header: m.Header, Subject: subj}
	p.MimeType = walk(t, &p, m.Header, m.Body)
	return p
}

// headerGetter is a message's or a part's header.
type headerGetter interface{ Get(string) string }

// walk collects the leaves of a MIME entity and returns its media type.
func walk(t *testing.T, p *parsed, h headerGetter, body io.Reader) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type %q: %v", h.Get("Content-Type"), err)
	}
	p.Types = append(p.Types, mt)
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			np, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("next part: %v", err)
			}
			walk(t, p, np.Header, np)
		}
		return mt
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		raw, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	case "quoted-printable":
		raw, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	}
	if err != nil {
		t.Fatalf("decode %s part: %v", mt, err)
	}
	if strings.HasPrefix(mt, "text/") {
		raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	}
	pt := part{ContentType: mt, Params: params, Body: raw}
	if cd := h.Get("Content-Disposition"); cd != "" {
		d, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			t.Fatalf("content disposition %q: %v", cd, err)
		}
		pt.Disposition, pt.Filename = d, dp["filename"]
	}
	p.Parts = append(p.Parts, pt)
	return mt
}
