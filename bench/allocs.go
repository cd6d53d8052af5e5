package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Scenario 6: allocations per request on the order path. It runs the Go
// benchmarks of api/ (bench_test.go) with -benchmem in a child `go test`:
// the whole Fiber app as `iacc serve` configures it, over an in-memory
// listener, against the MySQL and Redis servers of the run. One request
// after another on one connection: the row gives the allocations and bytes
// per request and the sequential latency, not throughput (scenarios 1 and
// 2 measure that).
func allocsScenario() Scenario {
	return Scenario{
		ID: "allocs", Aliases: []string{"6"},
		Title: "allocations per request on the order path: go test -bench -benchmem on POST /api/purchase-orders and the cached read (api/bench_test.go)",
		Run:   runAllocs,
	}
}

// allocsBenchmarks selects the benchmarks of the order path in ./api/.
const allocsBenchmarks = "^(BenchmarkCreatePurchaseOrder|BenchmarkCachedRead)$"

// benchResult is one line of `go test -bench` output.
type benchResult struct {
	Name    string             // without "Benchmark" and the -GOMAXPROCS suffix
	N       int64              // iterations
	Metrics map[string]float64 // by unit: "ns/op", "B/op", "allocs/op", custom ones
}

// parseBenchOutput reads the result lines of `go test -bench` output
// ("BenchmarkX-2  1000  812 ns/op  9 B/op  1 allocs/op"); other lines
// (goos, PASS, ok …) are skipped.
func parseBenchOutput(out []byte) []benchResult {
	var res []benchResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		r := benchResult{Name: strings.TrimPrefix(f[0], "Benchmark"), N: n, Metrics: map[string]float64{}}
		if i := strings.LastIndexByte(r.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(r.Name[i+1:]); err == nil {
				r.Name = r.Name[:i]
			}
		}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			r.Metrics[f[i+1]] = v
		}
		if ok && r.Metrics["ns/op"] > 0 {
			res = append(res, r)
		}
	}
	return res
}

// allocsRow turns a benchmark result into the scenario's row.
func allocsRow(r benchResult) Row {
	row := Row{Scenario: "allocs (go test -bench)", Step: r.Name, OK: int(r.N), Metrics: map[string]float64{}}
	for unit, v := range r.Metrics {
		if unit == "B/op" {
			unit = "bytes/op"
		}
		row.Metrics[strings.ReplaceAll(unit, "/", "_per_")] = v // ns_per_op, bytes_per_op, allocs_per_op, orders_per_s
	}
	allocs, bytesPer, ns := r.Metrics["allocs/op"], r.Metrics["B/op"], r.Metrics["ns/op"]
	row.Value = fmt.Sprintf("%.0f allocs/op, %.1f KB/op", allocs, bytesPer/1024)
	row.note(fmt.Sprintf("one request after another on one connection (in-memory listener): %s per request, %d requests; "+
		"the whole process counts (handler, MySQL driver, go-redis)", time.Duration(ns).Round(time.Microsecond), r.N))
	return row
}

func runAllocs(ctx context.Context, h *Harness) ([]Row, error) {
	h.StopServer() // the benchmark is alone on the CPU with MariaDB and Redis
	goCmd := goCommand()
	benchtime := max(time.Second, h.cfg.Duration/5)
	args := []string{"test", "-run", "^$", "-bench", allocsBenchmarks, "-benchmem", "-benchtime", benchtime.String(), "-count", "1", "./api/"}
	cmdline := goCmd + " " + strings.Join(args, " ")
	h.logf("allocs: %s", cmdline)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = h.cfg.Root
	// The run's servers, not the tests' defaults.
	cmd.Env = append(os.Environ(), "IACC_TEST_MYSQL_DSN="+h.cfg.MySQLServer, "IACC_TEST_REDIS_URL=redis://"+h.cfg.RedisAddr)
	cmd.SysProcAttr = childProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", cmdline, err, lastLines(out, 20))
	}
	results := parseBenchOutput(out)
	if len(results) == 0 {
		return nil, fmt.Errorf("%s printed no benchmark result:\n%s", cmdline, lastLines(out, 20))
	}
	rows := make([]Row, 0, len(results))
	for _, r := range results {
		rows = append(rows, allocsRow(r))
	}
	return rows, nil
}
