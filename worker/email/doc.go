// Package email handles email:send: it renders one email from the current
// state in MySQL, sends it over SMTP with go-mail, and records it in the
// emails table so that a duplicate task sends nothing.
//
// # Who gets what
//
// event:dispatch (worker/dispatch/emails.go) turns events into one
// email:send task per recipient:
//
//	purchase_order.created  purchase_order_vendor   the vendor, with the order PDF attached
//	                        purchase_order_created  the tenant's accounting and management addresses
//	invoice.created         invoice_created         accounting
//	payment.recorded        payment_remittance      the vendor (remittance advice)
//	                        payment_recorded        accounting
//
// webhook_endpoint_disabled (to the tenant's admins) and notice (a Title
// and Body given in the payload, keyed by EmailSend.Key) are sent by whoever
// needs them: the webhook worker, the scheduler's alerts.
//
// Each template is templates/NAME.txt (text/template: "subject" and
// "content") and templates/NAME.html (html/template: "content"), embedded
// and wrapped by layout.txt and layout.html. Every message is
// multipart/alternative (text/plain and text/html), inside multipart/mixed
// when it carries an attachment, and has the headers Auto-Submitted and
// X-Auto-Response-Suppress so that out-of-office robots keep quiet. Vendor
// emails reply to the tenant's first accounting address.
//
// # Waiting for the PDF
//
// The order PDF is rendered by pdf:render, enqueued by the same dispatch.
// Until the documents row of the order's version exists, the handler returns
// an error wrapping [tasks.ErrNotReady], retried after 1 s, 2 s, 4 s… up to
// 5 min ([tasks.RetryIn]), so the task's retries cover over 20 minutes of
// PDF backlog. If the order moved on before that version was rendered (the
// renderer skips superseded versions), the current version is attached.
// Nothing is claimed before the PDF is there: a waiting email has no row.
//
// # Exactly once, and where it ends
//
// The emails row of the dedupe key (tasks.EmailSend.DedupeKey: event,
// template, recipient) is the record of the email:
//
//  1. The handler renders the email, then claims the row before talking
//     SMTP (store.ClaimEmail): it inserts it as 'sending' with a lease
//     (DefaultLease, longer than the task's timeout) unless the recipient
//     is on the tenant's suppression list, in the same statement; or takes
//     over a 'sending' row whose lease ran out. A row leased by another live
//     attempt answers "busy": the task retries once the lease ends.
//  2. A row that is final (sent, failed, suppressed) means: done, return.
//  3. A suppressed recipient gets a row 'suppressed' and nothing is sent.
//  4. After the server accepted the message (250 to DATA), the row is
//     marked 'sent'.
//
// When the email cannot be rendered (its data gone, its PDF not rendered
// yet, MySQL unreachable), steps 2 and 3 are checked first: a finished
// email or a suppressed recipient needs no data.
//
// A duplicate task — the same payload enqueued again under a new task id, or
// the same task run again after its lease expired in asynq — finds 'sent' in
// step 2 and sends nothing.
//
// The boundary: if the process dies (or MySQL is unreachable) between the
// server's 250 and the UPDATE to 'sent', the row stays 'sending' and the
// retry sends the message again. It carries the same Message-ID — derived
// from the tenant and dedupe key with [MessageID], stored in the row at the
// claim and reused by every attempt — and the same Date, so receiving
// systems that deduplicate by Message-ID show it once. SMTP offers no
// stronger guarantee: the acceptance and our record of it cannot be one
// transaction.
//
// # Failures
//
//   - 4xx replies, connection errors, timeouts, TLS or AUTH problems are
//     transient: the row is released (still 'sending', last_error set) and
//     the task retries with the worker's backoff. With no SMTP server
//     answering, emails wait in their retry schedule; nothing is lost, and an
//     archived task can be run again from the dashboard.
//   - A 5xx reply is permanent: the row becomes 'failed' and the error wraps
//     asynq.SkipRetry. A 5xx to RCPT TO also puts the address on the
//     tenant's suppression list (email_suppressions): later emails to it are
//     recorded as 'suppressed' and not sent, until
//     store.DeleteEmailSuppression takes it off.
//   - A subject that does not exist, an unknown template, a malformed
//     address: permanent.
//
// Cancelling the task's context closes the SMTP connection at once.
//
// The [Mailer] keeps up to 8 SMTP sessions open between sends (each for 30
// s idle and 100 messages at most), so an email costs MAIL, RCPT and DATA
// rather than a new connection, greeting, STARTTLS, AUTH and QUIT. A kept
// session the server has closed meanwhile fails on MAIL FROM, before the
// message is handed over, and the message goes out on a new session. No
// command follows the accepted data (no RSET, no QUIT), so a message the
// server accepted is a successful send.
//
// # Configuration
//
// [NewMailer] reads the SMTP URL (IACC_SMTP_URL):
//
//	smtp://user:password@smtp.example.com:587?starttls=required
//	smtp://127.0.0.1:1025                        (local default: Mailpit or MailHog)
//	smtps://user:password@smtp.example.com:465
//
// and the sender (IACC_MAIL_FROM), whose domain ends every Message-ID.
// Passwords never appear in errors or logs: the URL is shown redacted.
//
// Package smtptest holds the SMTP server the tests talk to.
package email
