// Command iacc is the whole product in one binary: the API, the worker, the
// scheduler (outbox relay and cron), migrations and admin commands. Run
// `iacc --help` for the list; configuration comes from IACC_* environment
// variables (see config.go and the README's table).
//
// This is the only package that imports everything: it reads the
// configuration, opens MySQL, Redis and the blob store, and wires them into
// the api, worker and scheduler packages.
package main
