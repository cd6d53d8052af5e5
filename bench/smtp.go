package bench

import (
	"fmt"
	"io"
	"log"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is the SMTP server the child's worker sends its emails to: it
// accepts every message, counts it and throws it away, as a local relay
// would take it off the worker's hands.
type smtpSink struct {
	addr     string
	srv      *smtp.Server
	messages atomic.Int64
}

func startSMTPSink() (*smtpSink, error) {
	s := &smtpSink{}
	srv, addr, err := serveSMTP(func() smtp.Session { return sinkSession{s} })
	if err != nil {
		return nil, fmt.Errorf("SMTP sink: %w", err)
	}
	s.srv, s.addr = srv, addr
	return s, nil
}

// serveSMTP starts an SMTP server on a free loopback port whose sessions
// come from session: plain text, no auth, messages up to 64 MB.
func serveSMTP(session func() smtp.Session) (*smtp.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return session(), nil }))
	srv.Domain = "iaccbench.local"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

// URL is the child's IACC_SMTP_URL.
func (s *smtpSink) URL() string { return "smtp://" + s.addr + "?starttls=none" }

func (s *smtpSink) close() { _ = s.srv.Close() }

type sinkSession struct{ s *smtpSink }

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (ss sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.messages.Add(1)
	return nil
}
