package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func newEmail(tenantID int64, key string) store.Email {
	return store.Email{TenantID: tenantID, DedupeKey: key, Template: "notice", Recipient: "a@x.test", SubjectType: "purchase_order",
		SubjectID: 7, EventID: 3, MessageID: "<abc@iacc.test>", MailSubject: "Hello"}
}

// sameEmail compares two email rows, times by instant.
func sameEmail(a, b store.Email) bool {
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	return a.ID == b.ID && a.TenantID == b.TenantID && a.DedupeKey == b.DedupeKey && a.Template == b.Template &&
		a.Recipient == b.Recipient && a.SubjectType == b.SubjectType && a.SubjectID == b.SubjectID && a.EventID == b.EventID &&
		a.Status == b.Status && a.MessageID == b.MessageID && a.MailSubject == b.MailSubject && a.Attempts == b.Attempts &&
		a.LastError == b.LastError && (a.LeaseUntil == nil) == (b.LeaseUntil == nil) && at(a.LeaseUntil).Equal(at(b.LeaseUntil)) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && (a.SentAt == nil) == (b.SentAt == nil)
}

// An email is claimed once: a second claim while the lease runs is busy; a
// released (transiently failed) email is claimed again with the same
// Message-ID; once sent or failed every claim is done.
func TestClaimEmailLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	in := newEmail(ten.ID, "evt-3:notice:a@x.test")

	e, got, err := store.ClaimEmail(ctx, db, in, time.Minute)
	if err != nil || got != store.EmailClaimed {
		t.Fatalf("first claim: %v %v", got, err)
	}
	if e.Status != store.EmailSending || e.Attempts != 1 || e.MessageID != in.MessageID || e.LeaseUntil == nil ||
		e.DedupeKey != in.DedupeKey || e.Recipient != "a@x.test" || e.EventID != 3 || e.SubjectID != 7 || e.MailSubject != "Hello" {
		t.Fatalf("claimed row %+v", e)
	}
	if stored, err := store.GetEmail(ctx, db, ten.ID, in.DedupeKey); err != nil || !sameEmail(stored, e) {
		t.Fatalf("claim returned %+v; the stored row is %+v (%v)", e, stored, err)
	}
	if _, got, err := store.ClaimEmail(ctx, db, in, time.Minute); err != nil || got != store.EmailBusy {
		t.Fatalf("claim while leased: %v %v, want busy", got, err)
	}
	if err := store.ReleaseEmail(ctx, db, e.ID, "451 try later"); err != nil {
		t.Fatal(err)
	}
	in2 := in
	in2.MessageID = "<other@iacc.test>" // a later attempt computes its own; the stored one wins
	e2, got, err := store.ClaimEmail(ctx, db, in2, time.Minute)
	if err != nil || got != store.EmailClaimed {
		t.Fatalf("claim after release: %v %v", got, err)
	}
	if e2.ID != e.ID || e2.Attempts != 2 || e2.MessageID != in.MessageID || e2.LastError != "451 try later" {
		t.Fatalf("row after second claim %+v", e2)
	}
	if err := store.MarkEmailSent(ctx, db, e.ID); err != nil {
		t.Fatal(err)
	}
	e3, got, err := store.ClaimEmail(ctx, db, in, time.Minute)
	if err != nil || got != store.EmailDone || e3.Status != store.EmailSent || e3.SentAt == nil || e3.LastError != "" || e3.Attempts != 2 {
		t.Fatalf("claim after sent: %v %v %+v", got, err, e3)
	}
	// Failing a sent email changes nothing.
	if err := store.MarkEmailFailed(ctx, db, e.ID, "late"); err != nil {
		t.Fatal(err)
	}
	if e4, _ := store.GetEmail(ctx, db, ten.ID, in.DedupeKey); e4.Status != store.EmailSent {
		t.Fatalf("sent email became %s", e4.Status)
	}

	failed := newEmail(ten.ID, "evt-3:notice:b@x.test")
	f, _, err := store.ClaimEmail(ctx, db, failed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MarkEmailFailed(ctx, db, f.ID, "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if f2, got, err := store.ClaimEmail(ctx, db, failed, time.Minute); err != nil || got != store.EmailDone || f2.Status != store.EmailFailed ||
		f2.LastError != "550 no such user" {
		t.Fatalf("claim after failed: %v %v %+v", got, err, f2)
	}

	// The same key in another tenant is another email.
	other := storetest.Tenant(t, db, "mail")
	if _, got, err := store.ClaimEmail(ctx, db, newEmail(other.ID, in.DedupeKey), time.Minute); err != nil || got != store.EmailClaimed {
		t.Fatalf("same key, other tenant: %v %v", got, err)
	}
	if _, err := store.GetEmail(ctx, db, ten.ID, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing email: %v", err)
	}
	list, err := store.ListEmailsBySubject(ctx, db, ten.ID, "purchase_order", 7)
	if err != nil || len(list) != 2 || list[0].ID != e.ID {
		t.Fatalf("emails of the subject: %v %+v", err, list)
	}
}

// A row left 'sending' by a crashed attempt is taken over once its lease
// has run out, and by one claimer only.
func TestClaimEmailTakesOverExpiredLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	in := newEmail(ten.ID, "k:notice:a@x.test")
	if _, got, err := store.ClaimEmail(ctx, db, in, -time.Second); err != nil || got != store.EmailClaimed {
		t.Fatalf("claim with a lease already over: %v %v", got, err)
	}
	var mu sync.Mutex
	outcomes := map[store.EmailClaim]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, got, err := store.ClaimEmail(ctx, db, in, time.Minute)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			outcomes[got]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if outcomes[store.EmailClaimed] != 1 || outcomes[store.EmailBusy] != 7 {
		t.Fatalf("concurrent take-overs: %v, want one claimed, seven busy", outcomes)
	}
	e, _ := store.GetEmail(ctx, db, ten.ID, in.DedupeKey)
	if e.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", e.Attempts)
	}
}

// Concurrent first claims insert one row; one of them wins.
func TestClaimEmailConcurrentInsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	in := newEmail(ten.ID, "k2:notice:a@x.test")
	var mu sync.Mutex
	claimed := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, got, err := store.ClaimEmail(ctx, db, in, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if got == store.EmailClaimed {
				mu.Lock()
				claimed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if claimed != 1 {
		t.Fatalf("%d concurrent claims won, want 1", claimed)
	}
}

func TestRecordSuppressedEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")

	e, err := store.RecordSuppressedEmail(ctx, db, newEmail(ten.ID, "s1"), "recipient suppressed")
	if err != nil || e.Status != store.EmailSuppressed || e.Attempts != 0 || e.LastError != "recipient suppressed" {
		t.Fatalf("new suppressed email: %v %+v", err, e)
	}
	// A row left 'sending' becomes suppressed; a sent one stays sent.
	sending, _, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "s2"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := store.RecordSuppressedEmail(ctx, db, newEmail(ten.ID, "s2"), "suppressed"); err != nil || e.Status != store.EmailSuppressed ||
		e.ID != sending.ID || e.LeaseUntil != nil {
		t.Fatalf("sending → %v %+v", err, e)
	}
	sent, _, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "s3"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MarkEmailSent(ctx, db, sent.ID); err != nil {
		t.Fatal(err)
	}
	if e, err := store.RecordSuppressedEmail(ctx, db, newEmail(ten.ID, "s3"), "suppressed"); err != nil || e.Status != store.EmailSent || e.LastError != "" {
		t.Fatalf("sent → %v %+v", err, e)
	}
}

// A claim checks the suppression list in its INSERT: a new email to a
// suppressed recipient is recorded 'suppressed', never 'sending'; a
// 'sending' row whose recipient was suppressed since becomes suppressed; a
// final row stays as it is. Another tenant's suppression does not count.
func TestClaimEmailSuppressedRecipient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	other := storetest.Tenant(t, db, "mail")

	// Claimed before the suppression: one sending (lease ended), one sent.
	stale, _, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "stale"), -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sent, _, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "sent"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MarkEmailSent(ctx, db, sent.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.SuppressEmailAddress(ctx, db, other.ID, "a@x.test", "other tenant", 0); err != nil {
		t.Fatal(err)
	}
	if _, got, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "before"), time.Minute); err != nil || got != store.EmailClaimed {
		t.Fatalf("claim with another tenant's suppression: %v %v", got, err)
	}
	if err := store.SuppressEmailAddress(ctx, db, ten.ID, " A@X.test", "550 no such user", 0); err != nil {
		t.Fatal(err)
	}

	e, got, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "new"), time.Minute)
	if err != nil || got != store.EmailRecipientSuppressed || e.Status != store.EmailSuppressed || e.Attempts != 0 ||
		e.LeaseUntil != nil || e.LastError != "recipient suppressed: 550 no such user" {
		t.Fatalf("new email to a suppressed recipient: %v %v %+v", got, err, e)
	}
	e, got, err = store.ClaimEmail(ctx, db, newEmail(ten.ID, "stale"), time.Minute)
	if err != nil || got != store.EmailRecipientSuppressed || e.ID != stale.ID || e.Status != store.EmailSuppressed || e.Attempts != 1 {
		t.Fatalf("sending email to a suppressed recipient: %v %v %+v", got, err, e)
	}
	e, got, err = store.ClaimEmail(ctx, db, newEmail(ten.ID, "sent"), time.Minute)
	if err != nil || got != store.EmailDone || e.ID != sent.ID || e.Status != store.EmailSent {
		t.Fatalf("sent email to a suppressed recipient: %v %v %+v", got, err, e)
	}
	// Suppressed is final: a second claim is done.
	if _, got, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, "new"), time.Minute); err != nil || got != store.EmailDone {
		t.Fatalf("second claim of a suppressed email: %v %v", got, err)
	}
}

// MarkEmailSent marks every email it is given that is still 'sending'; a
// final one (refused) keeps its status, and emails not named stay sending.
func TestMarkEmailSentSeveral(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	var rows []store.Email
	for _, key := range []string{"a", "b", "refused", "other"} {
		e, _, err := store.ClaimEmail(ctx, db, newEmail(ten.ID, key), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, e)
	}
	if err := store.MarkEmailFailed(ctx, db, rows[2].ID, "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkEmailSent(ctx, db, rows[0].ID, rows[1].ID, rows[2].ID); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{store.EmailSent, store.EmailSent, store.EmailFailed, store.EmailSending} {
		e, err := store.GetEmail(ctx, db, ten.ID, rows[i].DedupeKey)
		if err != nil || e.Status != want || (want == store.EmailSent) != (e.SentAt != nil) || (want == store.EmailSent && e.LeaseUntil != nil) {
			t.Errorf("email %s: %+v (%v), want %s", rows[i].DedupeKey, e, err, want)
		}
	}
}

func TestEmailSuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	other := storetest.Tenant(t, db, "mail")

	if err := store.SuppressEmailAddress(ctx, db, ten.ID, " Bounce@X.test ", "550 no such user", 0); err != nil {
		t.Fatal(err)
	}
	if err := store.SuppressEmailAddress(ctx, db, ten.ID, "bounce@x.test", "second reason", 0); err != nil {
		t.Fatal(err)
	}
	s, err := store.GetEmailSuppression(ctx, db, ten.ID, "BOUNCE@x.test")
	if err != nil || s.Address != "bounce@x.test" || s.Reason != "550 no such user" || s.EmailID != 0 {
		t.Fatalf("suppression: %v %+v", err, s)
	}
	if _, err := store.GetEmailSuppression(ctx, db, other.ID, "bounce@x.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant sees the suppression: %v", err)
	}
	if err := store.DeleteEmailSuppression(ctx, db, ten.ID, "Bounce@x.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetEmailSuppression(ctx, db, ten.ID, "bounce@x.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := store.DeleteEmailSuppression(ctx, db, ten.ID, "bounce@x.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
}

// CheckEmail sees the email recorded under a key (its status: final once
// sent, not while sending) and its recipient's suppression, per tenant.
func TestCheckEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	other := storetest.Tenant(t, db, "mail")
	in := newEmail(ten.ID, "evt-9:notice:a@x.test")

	if c, err := store.CheckEmail(ctx, db, ten.ID, in.DedupeKey, in.Recipient); err != nil || c != (store.EmailPrecheck{}) || c.Final() {
		t.Fatalf("nothing recorded: %+v %v", c, err)
	}
	e, _, err := store.ClaimEmail(ctx, db, in, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := store.CheckEmail(ctx, db, ten.ID, in.DedupeKey, in.Recipient); err != nil || c.Status != store.EmailSending || c.Final() || c.Suppressed {
		t.Fatalf("while sending: %+v %v", c, err)
	}
	if err := store.MarkEmailSent(ctx, db, e.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.SuppressEmailAddress(ctx, db, ten.ID, "a@x.test", "550 gone", e.ID); err != nil {
		t.Fatal(err)
	}
	c, err := store.CheckEmail(ctx, db, ten.ID, in.DedupeKey, " A@X.test")
	if err != nil || c.Status != store.EmailSent || !c.Final() || !c.Suppressed || c.SuppressedReason != "550 gone" {
		t.Fatalf("sent and suppressed: %+v %v", c, err)
	}
	if c, err := store.CheckEmail(ctx, db, other.ID, in.DedupeKey, in.Recipient); err != nil || c != (store.EmailPrecheck{}) {
		t.Fatalf("another tenant: %+v %v", c, err)
	}
}

// The endpoint of a webhook_endpoint_disabled email: its URL and reason;
// a missing row, or a missing table, is ErrNotFound (a generic email).
func TestGetWebhookEndpointNotice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "mail")
	other := storetest.Tenant(t, db, "mail")
	ts := time.Now().UTC()
	res, err := db.ExecContext(ctx, `INSERT INTO webhook_endpoints (tenant_id, url, enabled, disabled_reason, secret, created_at, updated_at)
		VALUES (?, 'https://hooks.example.com/iacc', FALSE, 'failing', 'whsec_x', ?, ?)`, ten.ID, ts, ts)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	n, err := store.GetWebhookEndpointNotice(ctx, db, ten.ID, id)
	if err != nil || n.URL != "https://hooks.example.com/iacc" || n.DisabledReason != "failing" {
		t.Fatalf("notice: %v %+v", err, n)
	}
	if _, err := store.GetWebhookEndpointNotice(ctx, db, other.ID, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	if _, err := db.ExecContext(ctx, `RENAME TABLE webhook_endpoints TO webhook_endpoints_gone`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetWebhookEndpointNotice(ctx, db, ten.ID, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("without the table: %v", err)
	}
}
