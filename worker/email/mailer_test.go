package email

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/iacc/iacc/worker/email/smtptest"
)

const secret = "s3cr#t-Pa55"

func TestNewMailerParsesURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url      string
		host     string
		port     int
		implicit bool
		policy   gomail.TLSPolicy
		user     string
		auth     []gomail.SMTPAuthType
	}{
		{"smtp://127.0.0.1:1025", "127.0.0.1", 1025, false, gomail.TLSOpportunistic, "", defaultAuth},
		{"smtp://mail.example.com", "mail.example.com", 587, false, gomail.TLSOpportunistic, "", defaultAuth},
		{"smtp://u:" + url.QueryEscape(secret) + "@mail.example.com:587?starttls=required", "mail.example.com", 587, false, gomail.TLSMandatory, "u", defaultAuth},
		{"smtp://mail.example.com:25?starttls=none", "mail.example.com", 25, false, gomail.NoTLS, "", defaultAuth},
		{"smtp://mail.example.com?starttls=opportunistic", "mail.example.com", 587, false, gomail.TLSOpportunistic, "", defaultAuth},
		{"smtps://apikey:x@smtp.example.com", "smtp.example.com", 465, true, gomail.TLSOpportunistic, "apikey", defaultAuth},
		{"smtps://u:p@[::1]:2465?auth=login", "::1", 2465, true, gomail.TLSOpportunistic, "u", []gomail.SMTPAuthType{gomail.SMTPAuthLogin}},
	} {
		m, err := NewMailer(Config{URL: tc.url, From: "no-reply@example.com"})
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if m.host != tc.host || m.port != tc.port || m.implicitTLS != tc.implicit || m.starttls != tc.policy || m.user != tc.user ||
			len(m.auth) != len(tc.auth) || m.auth[0] != tc.auth[0] {
			t.Errorf("%s: parsed %+v", tc.url, m)
		}
		if strings.Contains(m.String(), secret) || strings.Contains(m.String(), url.QueryEscape(secret)) {
			t.Errorf("String() shows the password: %s", m)
		}
		if m.tlsConfig.ServerName != tc.host {
			t.Errorf("%s: TLS server name %q", tc.url, m.tlsConfig.ServerName)
		}
	}
}

func TestNewMailerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	pw := url.QueryEscape(secret)
	for _, tc := range []struct{ url, from, want string }{
		{"http://u:" + pw + "@mail.example.com", "a@b.test", "scheme"},
		{"smtp://u:" + pw + "@mail.example.com:99999", "a@b.test", "port"},
		{"smtp://u:" + pw + "@mail.example.com:x", "a@b.test", "not a valid URL"},
		{"smtp://u:" + secret + " space@mail.example.com", "a@b.test", "not a valid URL"},
		{"smtp://u:" + pw + "@mail.example.com?starttls=maybe", "a@b.test", "starttls"},
		{"smtp://u:" + pw + "@mail.example.com?tls=on", "a@b.test", "unknown option"},
		{"smtps://u:" + pw + "@mail.example.com?starttls=required", "a@b.test", "smtp:// only"},
		{"smtp://u:" + pw + "@mail.example.com?auth=magic", "a@b.test", "auth"},
		{"smtp://mail.example.com?auth=plain", "a@b.test", "needs a user"},
		{"smtp://:" + pw + "@mail.example.com", "a@b.test", "needs a user"},
		{"smtp://u:" + pw + "@/path", "a@b.test", "want scheme"},
		{"", "a@b.test", "scheme"},
		{"smtp://mail.example.com", "not an address", "sender"},
	} {
		_, err := NewMailer(Config{URL: tc.url, From: tc.from})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error about %q", tc.url, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), pw) {
			t.Errorf("%q: the error shows the password: %v", tc.url, err)
		}
	}
}

// The SMTP URL is configuration, not untrusted input, but it holds a
// password: no input makes NewMailer panic or repeat the password.
func FuzzNewMailer(f *testing.F) {
	f.Add("smtp://user:" + url.QueryEscape(secret) + "@mail.example.com:587?starttls=required")
	f.Add("smtps://u:p@[::1]:465?auth=plain")
	f.Add("smtp://u:%zz@host")
	f.Fuzz(func(t *testing.T, raw string) {
		m, err := NewMailer(Config{URL: raw, From: "a@b.test"})
		u, perr := url.Parse(strings.TrimSpace(raw))
		if perr != nil || u.User == nil {
			return
		}
		pw, ok := u.User.Password()
		if !ok || len(pw) < 6 || strings.Contains(u.Redacted(), pw) { // the same text elsewhere in the URL may be echoed
			return
		}
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Fatalf("error repeats the password: %v", err)
		}
		if m != nil && strings.Contains(m.String(), pw) {
			t.Fatalf("String() repeats the password: %s", m)
		}
	})
}

func testMsg(t *testing.T, m *Mailer, to string) *gomail.Msg {
	t.Helper()
	msg := gomail.NewMsg()
	from := m.From()
	msg.FromMailAddress(&from)
	if err := msg.To(to); err != nil {
		t.Fatal(err)
	}
	msg.Subject("test")
	msg.SetBodyString(gomail.TypeTextPlain, "hello")
	return msg
}

// AUTH, STARTTLS (opportunistic, required, none) and implicit TLS against
// real servers; a wrong password is a transient failure whose error does
// not show the password.
func TestMailerTransport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	serverTLS, roots := smtptest.SelfSigned(t)
	clientTLS := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}

	plain := smtptest.NewServer(t, smtptest.Options{User: "iacc", Password: secret})
	starttls := smtptest.NewServer(t, smtptest.Options{TLS: serverTLS, User: "iacc", Password: secret})
	implicit := smtptest.NewServer(t, smtptest.Options{TLS: serverTLS, ImplicitTLS: true, User: "iacc", Password: secret})
	noAuth := smtptest.NewServer(t, smtptest.Options{})

	for _, tc := range []struct {
		name    string
		srv     *smtptest.Server
		url     string
		wantTLS bool
		wantErr bool
	}{
		{"auth over plain to localhost", plain, plain.URL(), false, false},
		{"opportunistic STARTTLS", starttls, starttls.URL(), true, false},
		{"required STARTTLS", starttls, starttls.URL() + "?starttls=required", true, false},
		{"STARTTLS off", starttls, starttls.URL() + "?starttls=none", false, false},
		{"required STARTTLS, server without TLS", plain, plain.URL() + "?starttls=required", false, true},
		{"implicit TLS", implicit, implicit.URL(), true, false},
		{"forced PLAIN", implicit, implicit.URL() + "?auth=plain", true, false},
		{"no credentials", noAuth, noAuth.URL(), false, false},
	} {
		m, err := NewMailer(Config{URL: tc.url, From: "iacc <no-reply@iacc.test>", TLSConfig: clientTLS, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		before := len(tc.srv.Messages())
		err = m.Send(ctx, testMsg(t, m, "x@acme.test"))
		if tc.wantErr {
			if err == nil || Classify(err).Permanent || strings.Contains(err.Error(), secret) {
				t.Errorf("%s: %v, want a transient error without the password", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		msgs := tc.srv.Messages()
		if len(msgs) != before+1 {
			t.Errorf("%s: %d messages", tc.name, len(msgs)-before)
			continue
		}
		if got := msgs[len(msgs)-1]; got.TLS != tc.wantTLS || (tc.srv != noAuth && got.User != "iacc") {
			t.Errorf("%s: TLS %v user %q, want TLS %v", tc.name, got.TLS, got.User, tc.wantTLS)
		}
	}

	wrongURL := url.URL{Scheme: "smtp", Host: plain.Addr, User: url.UserPassword("iacc", "wrong-"+secret)}
	wrong, err := NewMailer(Config{URL: wrongURL.String(), From: "a@iacc.test"})
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Send(ctx, testMsg(t, wrong, "x@acme.test"))
	if err == nil || Classify(err).Permanent || strings.Contains(err.Error(), secret) {
		t.Errorf("wrong password: %v, want a transient error without the password", err)
	}

	// Nobody listening: transient.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	gone, err := NewMailer(Config{URL: "smtp://" + addr, From: "a@iacc.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Send(ctx, testMsg(t, gone, "x@acme.test")); err == nil || Classify(err).Permanent {
		t.Errorf("no server: %v, want a transient error", err)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	m, err := NewMailer(Config{URL: srv.URL(), From: "a@iacc.test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		script    func()
		permanent bool
		recipient bool
		code      int
	}{
		{func() { srv.ReplyRcpt("x@acme.test", 451, 1) }, false, true, 451},
		{func() { srv.ReplyRcpt("x@acme.test", 550, 1) }, true, true, 550},
		{func() { srv.ReplyData(552, 1) }, true, false, 552},
		{func() { srv.ReplyData(421, 1) }, false, false, 421},
	} {
		tc.script()
		err := m.Send(ctx, testMsg(t, m, "x@acme.test"))
		r := Classify(err)
		if err == nil || r.Permanent != tc.permanent || r.Recipient != tc.recipient || r.Code != tc.code {
			t.Errorf("reply %d: %+v (%v)", tc.code, r, err)
		}
	}
	if r := Classify(errors.New("dial tcp: connection refused")); r.Permanent || r.Code != 0 {
		t.Errorf("network error classified %+v", r)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Send(cctx, testMsg(t, m, "x@acme.test")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled send: %v", err)
	}
}

// Sends share sessions: one after another they use one connection; a
// session the server closed is replaced without losing or repeating the
// message; concurrent sends each get a session of their own; Close ends
// the kept ones.
func TestMailerKeepsSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{User: "iacc", Password: secret})
	m, err := NewMailer(Config{URL: srv.URL(), From: "iacc <no-reply@iacc.test>", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := m.Send(ctx, testMsg(t, m, "x@acme.test")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n, msgs := srv.Sessions(), srv.Messages(); n != 1 || len(msgs) != 5 || msgs[4].Session != 1 || msgs[4].User != "iacc" {
		t.Fatalf("5 sends one after another: %d sessions, %d messages (last %+v), want 1 session", n, len(msgs), msgs[len(msgs)-1].Session)
	}

	srv.DropSessions() // the server ends the idle session
	if err := m.Send(ctx, testMsg(t, m, "y@acme.test")); err != nil {
		t.Fatalf("send after the server closed the session: %v", err)
	}
	if n, got := srv.Sessions(), srv.MessagesTo("y@acme.test"); n != 2 || len(got) != 1 || got[0].Session != 2 {
		t.Fatalf("after the drop: %d sessions, %d messages to y (%+v), want one, on a second session", n, len(got), got)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 {
		wg.Go(func() { errs <- m.Send(ctx, testMsg(t, m, "z@acme.test")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent send: %v", err)
		}
	}
	if got := len(srv.MessagesTo("z@acme.test")); got != 12 {
		t.Fatalf("%d of 12 concurrent messages arrived", got)
	}
	if n := srv.Sessions(); n > 2+12 {
		t.Fatalf("%d sessions for 12 concurrent sends", n)
	}
	if len(m.idle) == 0 || len(m.idle) > idleConns {
		t.Fatalf("%d sessions kept, want 1 to %d", len(m.idle), idleConns)
	}
	m.Close()
	if len(m.idle) != 0 {
		t.Fatalf("%d sessions kept after Close", len(m.idle))
	}
	if err := m.Send(ctx, testMsg(t, m, "after@acme.test")); err != nil {
		t.Fatalf("send after Close: %v", err)
	}
	if len(m.idle) != 0 || len(srv.MessagesTo("after@acme.test")) != 1 {
		t.Fatalf("after Close: %d sessions kept, %d messages", len(m.idle), len(srv.MessagesTo("after@acme.test")))
	}
}

// A session is not used past its idle time or message count.
func TestMailerRetiresSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{})
	m, err := NewMailer(Config{URL: srv.URL(), From: "a@iacc.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx, testMsg(t, m, "x@acme.test")); err != nil {
		t.Fatal(err)
	}
	c := <-m.idle
	c.used = time.Now().Add(-idleTimeout) // idle too long
	m.idle <- c
	if err := m.Send(ctx, testMsg(t, m, "x@acme.test")); err != nil {
		t.Fatal(err)
	}
	c = <-m.idle
	c.sends = sendsPerConn // used up
	m.idle <- c
	if err := m.Send(ctx, testMsg(t, m, "x@acme.test")); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 || msgs[0].Session != 1 || msgs[1].Session != 2 || msgs[2].Session != 3 {
		t.Fatalf("messages %+v: want each on a new session", msgs)
	}
}
