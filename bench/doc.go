// Package bench is iacc's benchmark harness: it measures the product's speed
// goals against the real MariaDB and Redis, next to a ceiling measured in the
// same run on the same machine, and says PASS or FAIL for each target.
//
// Run it with `make bench` or `go run ./bench/cmd/iaccbench` (see README.md
// for the flags). A run
//
//   - drops and recreates the database iacc_bench and migrates it with
//     store.DB.Migrate, reserves and flushes one Redis DB index (14);
//   - builds the real iacc binary and starts `iacc serve` as a child process
//     when a scenario needs the server (and always stops it, Ctrl-C included);
//   - runs the selected scenarios, each a list of steps: a closed loop of
//     clients, a warm-up, then a measured window bounded in time;
//   - prints a table and writes the same rows as JSON to
//     bench/results/latest.json.
//
// A scenario pairs what it measures with a ceiling: the same work done by the
// cheapest possible means (the order transaction over database/sql without
// HTTP, a bare Fiber handler doing one Redis GET, ...). Absolute numbers drift
// from run to run; the ratio to a ceiling measured in the same run does much
// less. The load generator shares the machine's cores with the server,
// MariaDB and Redis, and every step reports who used the CPU.
//
// Adding a scenario: write a func returning a Scenario (see intake.go for the
// pattern) and append it to the list in Scenarios.
//
// Go micro-benchmarks (go test -bench) live next to the code they measure,
// e.g. api/bench_test.go (allocations per request on the order path).
package bench
