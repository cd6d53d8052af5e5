package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// TLS, when set, is offered with STARTTLS, or from the first byte when
	// ImplicitTLS is set. See SelfSigned.
	TLS         *tls.Config
	ImplicitTLS bool
	// User and Password, when set, make AUTH PLAIN mandatory.
	User, Password string
}

// Message is one accepted message.
type Message struct {
	From    string
	To      []string
	Data    []byte
	TLS     bool   // the session was encrypted
	User    string // the authenticated user, if any
	Session int    // the session (connection) it came in, numbered from 1
}

// Server is an SMTP server on 127.0.0.1, closed when the test ends.
type Server struct {
	Addr string // host:port
	opts Options
	srv  *smtp.Server

	mu       sync.Mutex
	msgs     []Message
	rcpt     map[string]*script
	data     *script
	attempts map[string]int
	changed  chan struct{} // closed and replaced when a message arrives
	sessions []*smtp.Conn  // every connection, in order
}

// script answers the next n commands with err (n < 0: every one).
type script struct {
	err *smtp.SMTPError
	n   int
}

func (s *script) next() error {
	if s == nil || s.n == 0 {
		return nil
	}
	if s.n > 0 {
		s.n--
	}
	return s.err
}

// NewServer starts a server; it stops when the test ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), opts: opts, rcpt: map[string]*script{}, attempts: map[string]int{}, changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sessions = append(s.sessions, c)
		return &session{s: s, conn: c, n: len(s.sessions)}, nil
	}))
	srv.Domain = "smtptest.local"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 32 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.TLS != nil {
		if opts.ImplicitTLS {
			ln = tls.NewListener(ln, opts.TLS)
		} else {
			srv.TLSConfig = opts.TLS
		}
	}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the server's URL for email.Config (credentials included).
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr}
	if s.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.User != "" {
		u.User = url.UserPassword(s.opts.User, s.opts.Password)
	}
	return u.String()
}

// ReplyRcpt scripts the next n RCPT TO commands for addr (n < 0: all of
// them) to fail with code, e.g. 451 (try again later) or 550 (no such user).
func (s *Server) ReplyRcpt(addr string, code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcpt[strings.ToLower(addr)] = &script{err: smtpError(code), n: n}
}

// ReplyData scripts the next n messages (n < 0: all) to be refused with
// code after their data was sent.
func (s *Server) ReplyData(code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = &script{err: smtpError(code), n: n}
}

func smtpError(code int) *smtp.SMTPError {
	class := code / 100
	msg := "Requested action not taken: try again later"
	if class == 5 {
		msg = "Requested action not taken: mailbox unavailable"
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, 1, 1}, Message: msg}
}

// Messages returns the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// MessagesTo returns the accepted messages with addr among their recipients.
func (s *Server) MessagesTo(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Sessions counts the sessions (connections) the server has had.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// DropSessions closes every open session from the server's side, as a
// server does with sessions idle too long.
func (s *Server) DropSessions() {
	s.mu.Lock()
	conns := append([]*smtp.Conn(nil), s.sessions...)
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// RcptAttempts counts the RCPT TO commands for addr, answered or refused.
func (s *Server) RcptAttempts(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[strings.ToLower(addr)]
}

// WaitMessages waits until at least n messages were accepted, or the
// timeout passes; it returns the messages.
func (s *Server) WaitMessages(n int, timeout time.Duration) ([]Message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, ch := append([]Message(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return msgs, fmt.Errorf("smtptest: %d messages after %s, want %d", len(msgs), timeout, n)
		}
	}
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	n      int // its number
	user   string
	from   string
	to     []string
	authed bool
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.User == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.opts.User || pass != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed, ss.user = true, user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	key := strings.ToLower(to)
	s.attempts[key]++
	err := s.rcpt[key].next()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.data.next(); err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	s.msgs = append(s.msgs, Message{From: ss.from, To: append([]string(nil), ss.to...), Data: b.Bytes(), TLS: isTLS, User: ss.user, Session: ss.n})
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// SelfSigned returns a server TLS configuration with a fresh self-signed
// certificate for 127.0.0.1 and localhost, and the pool that trusts it.
func SelfSigned(t testing.TB) (server *tls.Config, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("smtptest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("smtptest: certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("smtptest: parse certificate: %v", err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}, roots
}
