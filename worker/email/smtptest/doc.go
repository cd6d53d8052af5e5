// Package smtptest runs a real SMTP server (emersion/go-smtp) for tests: it
// records every message it accepts and can be scripted to refuse recipients
// or message data with 4xx or 5xx replies, to require AUTH, and to speak TLS
// (STARTTLS or implicit).
//
//	srv := smtptest.NewServer(t, smtptest.Options{})
//	srv.ReplyRcpt("vendor@example.com", 451, 1) // the first RCPT TO: 451, then 250
//	mailer, _ := email.NewMailer(email.Config{URL: srv.URL(), From: "iacc <no-reply@iacc.test>"})
//	...
//	msgs := srv.Messages()
package smtptest
