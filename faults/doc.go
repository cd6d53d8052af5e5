// Package faults is iacc's fault suite: it runs the real iacc binary as
// child processes against a private MySQL database and a private Redis,
// breaks things for real (kill -9, SIGTERM, a Redis or MySQL cut through
// toxiproxy, Redis restarted empty or out of memory, a poison task, a dead
// or slow webhook receiver, two instances at once) and then proves, from MySQL and from
// the partners' own records, that nothing was lost and nothing was done
// twice.
//
// Each scenario gets:
//
//   - its own database (iacc_faults_<random>, migrated with `iacc migrate up`,
//     dropped at the end) and its own redis-server (random port, no
//     persistence, its own directory), so that restarting Redis empty or
//     cutting it hurts nobody else;
//   - an in-process toxiproxy in front of MySQL and Redis (and, where a
//     scenario wants them slow, the SMTP sink and the accounting partner);
//   - real partners in the suite's process: webhook receivers (net/http,
//     scriptable: ok, slow, refusing connections, answering 500), the SMTP
//     sink (worker/email/smtptest) and the accounting partner
//     (worker/accounting/accountingtest);
//   - a tenant with accounting and management addresses, an admin, vendors
//     with email addresses and webhook endpoints, created through the store,
//     `iacc user create` and the HTTP API.
//
// The verdict of a scenario comes from [Env.Tally]: for every committed
// purchase order it expects one PDF document row, the vendor email and the
// two notifications (counted at the SMTP sink by Message-ID), one document
// at the accounting partner, and one processed delivery per subscribed
// webhook endpoint (counted at the receiver by webhook-id). Raw receipts
// beyond the distinct ids are reported as "resent" (at-least-once with a
// stable id); a second distinct effect is a duplicate.
//
// The program in cmd/iaccfaults runs the scenarios and prints the table;
// docs/faults.md explains each scenario and how to read the table.
package faults
