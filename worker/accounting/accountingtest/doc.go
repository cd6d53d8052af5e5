// Package accountingtest is a fake accounting partner for tests: a real HTTP
// server (httptest) that implements the protocol of docs/accounting.md. It
// stores documents per tenant, honours Idempotency-Key (the same key
// replays the first answer), answers 409 with the existing id to a second
// create of the same source document, applies an update only when its
// version is newer, validates bodies (money as decimal strings) with 422
// problem answers, and can enforce a per-tenant rate limit with 429.
//
// Tests script failures ([Partner.Script]): the next requests get the
// scripted answers (500, 429 with Retry-After, 422, a hang, or "apply the
// request but never answer") before normal processing resumes. Every
// request is logged with its arrival time ([Partner.Requests]); tests wait
// on conditions with [Partner.WaitFor] instead of sleeping.
package accountingtest
