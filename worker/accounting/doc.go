// Package accounting handles accounting:sync: it pushes purchase orders,
// bills (from invoices) and payments to an external accounting system.
//
// The pieces:
//
//   - [Connector] is what an accounting system must offer: create a document
//     under an idempotency key, or update it by its external id. [REST] is
//     the connector for the REST protocol of docs/accounting.md; other
//     systems get their own connector behind the same interface.
//   - [Handler] runs one task. MySQL's accounting_syncs row of the document
//     (package store) is the source of truth, not the task: the handler
//     loads the document's current version and the row, and then does
//     nothing (that version is synced already), creates the document (no
//     external id yet) or updates it by external id. The Idempotency-Key is
//     derived from (tenant, document type, document id, version, create or
//     update), so retries and duplicate tasks send the same key and the
//     partner applies the request once.
//   - [Limiter] paces requests per tenant in Redis (a sliding window shared
//     by every worker process). Over the limit, the handler does not sleep:
//     it returns tasks.RetryIn(wait, ...) and the worker retries it later.
//   - [BacklogGauge] exports the backlog (pending, needs_attention) to
//     Prometheus; attempts are counted in metrics.Set.AccountingSyncs.
//
// How answers are handled: 2xx stores the external id and the synced
// version; 429 (and 503 with Retry-After) retries after Retry-After; 5xx,
// timeouts and network errors retry with the task's backoff; 4xx validation
// answers move the row to needs_attention with the partner's message and end
// the task (asynq.SkipRetry); 409 on create with the id of an existing
// document adopts it and updates it. A payment waits (tasks.ErrNotReady)
// until its bill has an external id.
//
// The accountingtest subpackage is a fake partner speaking the protocol, for
// tests.
package accounting
