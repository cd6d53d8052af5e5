package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Config configures the Mailer. Only URL and From are required.
type Config struct {
	// URL is the SMTP server (IACC_SMTP_URL):
	//
	//	smtp://[user:password@]host[:port][?starttls=opportunistic|required|none][&auth=...]
	//	smtps://[user:password@]host[:port][?auth=...]
	//
	// smtp:// talks plain SMTP (port 587 by default) and upgrades with
	// STARTTLS: "opportunistic" (the default) when the server offers it,
	// "required" or fail, "none" never. smtps:// is implicit TLS (port 465
	// by default). With a user, AUTH picks the best mechanism the server
	// offers (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN, CRAM-MD5; PLAIN and
	// LOGIN only over TLS or to localhost); auth=plain|login|cram-md5|
	// scram-sha-1|scram-sha-256 forces one. Special characters in the user
	// or password are percent-encoded.
	URL string
	// From is the sender (IACC_MAIL_FROM), "iacc <no-reply@example.com>"
	// or a bare address. Its domain ends every Message-ID.
	From string
	// Timeout bounds the connection and each SMTP command (default 20 s).
	Timeout time.Duration
	// HELO is the name the client greets with (default: the host name).
	HELO string
	// TLSConfig is used for STARTTLS and smtps:// (default: system roots,
	// TLS 1.2 or later). Tests set RootCAs.
	TLSConfig *tls.Config
}

// Mailer sends messages through one SMTP server. It is safe for concurrent
// use: a Send has a connection to itself, and keeps it open for the next
// Send (up to idleConns of them, each for idleTimeout and sendsPerConn
// messages at most).
type Mailer struct {
	host        string
	port        int
	user, pass  string
	auth        []gomail.SMTPAuthType
	starttls    gomail.TLSPolicy
	implicitTLS bool
	redacted    string
	from        netmail.Address
	domain      string
	timeout     time.Duration
	helo        string
	tlsConfig   *tls.Config

	client *gomail.Client // the options every connection is made with
	idle   chan *conn     // connections kept open between sends
	closed atomic.Bool    // Close was called: sessions are no longer kept
}

// conn is one SMTP session: its client, the slot that closes it when a
// send's context ends, and its use.
type conn struct {
	smtp  *smtp.Client
	slot  *connSlot
	used  time.Time
	sends int
}

const (
	// idleConns connections at most stay open between sends.
	idleConns = 8
	// idleTimeout: a connection idle longer is closed rather than used,
	// well before servers drop idle sessions (RFC 5321 asks them to wait
	// 5 minutes).
	idleTimeout = 30 * time.Second
	// sendsPerConn: a session is ended after that many messages (servers
	// limit the messages of a session too).
	sendsPerConn = 100
)

// authMechs maps the auth query parameter to go-mail mechanisms.
var authMechs = map[string]gomail.SMTPAuthType{
	"plain":         gomail.SMTPAuthPlain,
	"login":         gomail.SMTPAuthLogin,
	"cram-md5":      gomail.SMTPAuthCramMD5,
	"scram-sha-1":   gomail.SMTPAuthSCRAMSHA1,
	"scram-sha-256": gomail.SMTPAuthSCRAMSHA256,
}

// defaultAuth is the order of preference when the server offers several.
var defaultAuth = []gomail.SMTPAuthType{
	gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin, gomail.SMTPAuthCramMD5,
}

// NewMailer checks the configuration and returns a Mailer. It does not
// connect: an unreachable server shows as failed (and retried) sends.
// Errors never contain the password.
func NewMailer(cfg Config) (*Mailer, error) {
	m := &Mailer{timeout: cfg.Timeout, helo: cfg.HELO}
	if m.timeout <= 0 {
		m.timeout = 20 * time.Second
	}
	if err := m.parseURL(cfg.URL); err != nil {
		return nil, err
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail sender %q is not an address such as \"iacc <no-reply@example.com>\": %w", cfg.From, err)
	}
	at := strings.LastIndexByte(from.Address, '@')
	m.from, m.domain = *from, strings.ToLower(from.Address[at+1:])
	if cfg.TLSConfig != nil {
		m.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		m.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if m.tlsConfig.ServerName == "" {
		m.tlsConfig.ServerName = m.host
	}
	opts := []gomail.Option{
		gomail.WithPort(m.port), gomail.WithTimeout(m.timeout), gomail.WithDialContextFunc(m.dial),
		gomail.WithTLSConfig(m.tlsConfig),
		// No NOOP before each message: a session the server closed fails
		// on MAIL FROM, before any message data, and Send starts a new one.
		gomail.WithoutNoop(),
		// No RSET after a message: the end of its data ends the mail
		// transaction (RFC 5321 4.1.1.4); the next MAIL FROM starts anew.
		// (After a refused MAIL or RCPT go-mail still sends one.)
		gomail.WithoutRset(),
	}
	if m.implicitTLS {
		opts = append(opts, gomail.WithSSL()) // the dialer does the TLS; no STARTTLS on top
	} else {
		opts = append(opts, gomail.WithTLSPolicy(m.starttls))
	}
	if m.helo != "" {
		opts = append(opts, gomail.WithHELO(m.helo))
	}
	if m.user != "" {
		opts = append(opts, gomail.WithUsername(m.user), gomail.WithPassword(m.pass), gomail.WithOpportunisticSMTPAuth(m.auth...))
	}
	if m.client, err = gomail.NewClient(m.host, opts...); err != nil {
		return nil, fmt.Errorf("smtp client for %s: %w", m.redacted, err)
	}
	m.idle = make(chan *conn, idleConns)
	return m, nil
}

const urlForm = "smtp://user:password@host:587?starttls=required (or smtps://…:465)"

func (m *Mailer) parseURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error repeats the whole URL, password included: say less.
		return fmt.Errorf("SMTP URL is not a valid URL (form %s; percent-encode special characters of the user and password)", urlForm)
	}
	m.redacted = u.Redacted()
	switch u.Scheme {
	case "smtp":
		m.port = gomail.DefaultPortTLS
	case "smtps":
		m.port, m.implicitTLS = gomail.DefaultPortSSL, true
	default:
		return fmt.Errorf("SMTP URL %s: scheme must be smtp or smtps (form %s)", m.redacted, urlForm)
	}
	m.host = u.Hostname()
	if m.host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return fmt.Errorf("SMTP URL %s: want scheme://[user:password@]host[:port][?options] (form %s)", m.redacted, urlForm)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("SMTP URL %s: port %q is not a number from 1 to 65535", m.redacted, p)
		}
		m.port = n
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
		if m.user == "" {
			return fmt.Errorf("SMTP URL %s: a password needs a user name", m.redacted)
		}
	}
	m.starttls = gomail.TLSOpportunistic
	q := u.Query()
	for k := range q {
		if k != "starttls" && k != "auth" {
			return fmt.Errorf("SMTP URL %s: unknown option %q (known: starttls, auth)", m.redacted, k)
		}
	}
	if v := q.Get("starttls"); v != "" {
		if m.implicitTLS {
			return fmt.Errorf("SMTP URL %s: starttls applies to smtp:// only (smtps:// is TLS from the start)", m.redacted)
		}
		switch strings.ToLower(v) {
		case "opportunistic":
			m.starttls = gomail.TLSOpportunistic
		case "required", "mandatory":
			m.starttls = gomail.TLSMandatory
		case "none", "off":
			m.starttls = gomail.NoTLS
		default:
			return fmt.Errorf("SMTP URL %s: starttls must be required, opportunistic or none, got %q", m.redacted, v)
		}
	}
	m.auth = defaultAuth
	if v := q.Get("auth"); v != "" {
		mech, ok := authMechs[strings.ToLower(v)]
		if !ok {
			return fmt.Errorf("SMTP URL %s: auth must be one of plain, login, cram-md5, scram-sha-1, scram-sha-256, got %q", m.redacted, v)
		}
		if m.user == "" {
			return fmt.Errorf("SMTP URL %s: auth=%s needs a user and password", m.redacted, v)
		}
		m.auth = []gomail.SMTPAuthType{mech}
	}
	return nil
}

// String is the server URL with the password masked, for logs.
func (m *Mailer) String() string { return m.redacted }

// From is the sender address.
func (m *Mailer) From() netmail.Address { return m.from }

// Domain is the sender's domain: the right-hand side of every Message-ID.
func (m *Mailer) Domain() string { return m.domain }

// connSlotKey carries a send's connSlot through go-mail's dial context.
type connSlotKey struct{}

// connSlot holds the connection of one Send, so that cancelling the send's
// context can close it (go-mail bounds its commands by a timeout only).
type connSlot struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (s *connSlot) set(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conn = c
	return true
}

func (s *connSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		_ = s.conn.Close()
	}
}

// dial connects (over TLS for smtps://) and registers the connection with
// the send's slot. It returns the *tls.Conn itself, not a wrapper, so the
// SMTP client knows the session is encrypted.
func (m *Mailer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: m.timeout}
	var conn net.Conn
	var err error
	if m.implicitTLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: m.tlsConfig}).DialContext(ctx, network, addr)
	} else {
		conn, err = d.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	if slot, ok := ctx.Value(connSlotKey{}).(*connSlot); ok && !slot.set(conn) {
		_ = conn.Close()
		return nil, context.Canceled
	}
	return conn, nil
}

// Send delivers msg (one recipient or several), on a session kept open
// by an earlier Send or a new one. Cancelling ctx closes the connection at
// once. The error wraps go-mail's *SendError for refusals of the server;
// see Classify.
//
// A kept session the server has closed meanwhile fails before the message
// is handed over (on MAIL FROM, without a reply): the message is sent once
// more on a new session. No command follows the accepted data (no RSET,
// no QUIT), so a message the server accepted is a successful send.
func (m *Mailer) Send(ctx context.Context, msg *gomail.Msg) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for {
		c, reused, err := m.take(ctx)
		if err != nil {
			return m.sendError(ctx, err)
		}
		stop := context.AfterFunc(ctx, c.slot.close)
		err = m.client.SendWithSMTPClient(c.smtp, msg)
		live := stop() // false: ctx ended and closed the connection
		switch {
		case err == nil && live:
			m.put(c)
			return nil
		case err == nil:
			return nil
		}
		m.drop(c)
		if reused && live && ctx.Err() == nil && closedSession(err) {
			continue // the first use of a new session cannot take this branch
		}
		return m.sendError(ctx, err)
	}
}

// sendError wraps a failed send, with the context's error when it ended.
func (m *Mailer) sendError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("send via %s: %w (%w)", m.redacted, cerr, err)
	}
	return fmt.Errorf("send via %s: %w", m.redacted, err)
}

// take returns a kept session still fit for use (reused) or a new one.
func (m *Mailer) take(ctx context.Context) (c *conn, reused bool, err error) {
	for {
		select {
		case c = <-m.idle:
		default:
			return m.open(ctx)
		}
		if time.Since(c.used) < idleTimeout && c.sends < sendsPerConn {
			return c, true, nil
		}
		m.drop(c)
	}
}

// open dials a new session (connection, greeting, STARTTLS, AUTH).
func (m *Mailer) open(ctx context.Context) (*conn, bool, error) {
	slot := &connSlot{}
	stop := context.AfterFunc(ctx, slot.close)
	defer stop()
	sc, err := m.client.DialToSMTPClientWithContext(context.WithValue(ctx, connSlotKey{}, slot))
	if err != nil {
		slot.close()
		return nil, false, fmt.Errorf("dial failed: %w", err)
	}
	return &conn{smtp: sc, slot: slot}, false, nil
}

// put keeps c for the next Send, or ends it when enough are kept or the
// Mailer is closed.
func (m *Mailer) put(c *conn) {
	c.used, c.sends = time.Now(), c.sends+1
	if m.closed.Load() {
		m.quit(c)
		return
	}
	select {
	case m.idle <- c:
	default:
		m.quit(c)
	}
}

// quit ends a healthy session politely (QUIT), in the background.
func (m *Mailer) quit(c *conn) { go m.end(c) }

// end sends QUIT (waiting 5 s at most) and closes the connection.
func (m *Mailer) end(c *conn) {
	_ = c.smtp.UpdateDeadline(5 * time.Second)
	_ = m.client.CloseWithSMTPClient(c.smtp)
	c.slot.close()
}

// drop closes the connection of a session in an unknown state.
func (m *Mailer) drop(c *conn) { c.slot.close() }

// Close ends the sessions kept open; sends still running end theirs when
// they finish. Later sends work, each on a session of its own.
func (m *Mailer) Close() {
	m.closed.Store(true)
	for {
		select {
		case c := <-m.idle:
			m.end(c)
		default:
			return
		}
	}
}

// closedSession reports whether a send failed because its session was no
// longer there: no reply to MAIL FROM (a network error, or 421, the
// server closing the session). Nothing of the message was handed over.
func closedSession(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	if se.Reason != gomail.ErrSMTPMailFrom && se.Reason != gomail.ErrConnCheck {
		return false
	}
	code := se.ErrorCode()
	return code == 0 || code == 421
}

// Refusal is what Classify makes of a failed send.
type Refusal struct {
	// Permanent: the server answered 5xx; sending again will not help.
	Permanent bool
	// Recipient: the refusal came on RCPT TO, i.e. it concerns the address.
	Recipient bool
	// Code is the SMTP reply code (0 when the send failed before a reply:
	// connection refused, timeout, TLS).
	Code int
}

// Classify tells permanent refusals (5xx replies) from transient failures
// (4xx replies, network errors, timeouts, TLS or AUTH problems: everything
// an operator or time may fix).
func Classify(err error) Refusal {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return Refusal{}
	}
	code := se.ErrorCode()
	return Refusal{
		Permanent: code >= 500 && code < 600,
		Recipient: se.Reason == gomail.ErrSMTPRcptTo,
		Code:      code,
	}
}
