// Command iaccbench runs iacc's benchmark harness (package bench) against
// the real MariaDB and Redis and prints a table of throughput, latency,
// ceiling, ratio and PASS/FAIL per target. See bench/README.md.
//
//	go run ./bench/cmd/iaccbench                       # everything, ~4 min
//	go run ./bench/cmd/iaccbench -scenarios intake -duration 5s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/iacc/iacc/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg := bench.DefaultConfig()
	var scenarios, intakeClients string
	var strict, quiet, list bool
	var cpuProfile string
	fs := flag.NewFlagSet("iaccbench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: iaccbench [flags]\n\nScenarios (-scenarios, comma-separated ids or numbers; default all):\n")
		for _, s := range bench.Scenarios() {
			fmt.Fprintf(fs.Output(), "  %-8s (%s) %s\n", s.ID, strings.Join(s.Aliases, ","), s.Title)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&scenarios, "scenarios", "all", "scenarios to run: all, or a comma-separated list such as intake,reads,pdf (or 1,2,5a)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured window of each step")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "warm-up before each measured window")
	fs.StringVar(&intakeClients, "intake-clients", "1,8,32,64", "intake concurrency steps")
	fs.IntVar(&cfg.ReadClients, "read-clients", cfg.ReadClients, "concurrency of the read steps")
	fs.IntVar(&cfg.ReadOrders, "read-orders", cfg.ReadOrders, "orders seeded for the read steps")
	fs.IntVar(&cfg.Vendors, "vendors", cfg.Vendors, "vendors per tenant; orders are spread across them")
	fs.IntVar(&cfg.Items, "items", cfg.Items, "items per order")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of the steps that intake's and the cached read's ratio targets judge, each between two ceiling steps; judged on the median round")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "after an intake step, wait this long at most for the worker's PDF backlog")
	fs.DurationVar(&cfg.QuietWait, "quiet-wait", 0, "before each step, wait up to this long for other processes (tests, builds) to leave the CPU")
	fs.Func("env", "extra KEY=VALUE for the iacc child, e.g. -env GOGC=400 (repeatable)", func(s string) error {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return errors.New("want KEY=VALUE")
		}
		cfg.ChildEnv = append(cfg.ChildEnv, s)
		return nil
	})
	fs.StringVar(&cfg.Binary, "bin", "", "prebuilt iacc binary (default: go build ./cmd/iacc into a temp dir)")
	fs.StringVar(&cfg.MySQLServer, "mysql", cfg.MySQLServer, "MySQL server DSN without database")
	fs.StringVar(&cfg.Database, "database", cfg.Database, "database to drop, recreate and use (must start with iacc_bench)")
	fs.StringVar(&cfg.RedisAddr, "redis", cfg.RedisAddr, "Redis host:port")
	fs.IntVar(&cfg.RedisDB, "redis-db", cfg.RedisDB, "Redis DB index to reserve and flush")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "JSON report (a relative path is taken from the module root)")
	fs.StringVar(&cfg.Root, "root", "", "module root (default: found from the working directory)")
	fs.BoolVar(&strict, "strict", false, "exit with status 3 when a target FAILs")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	fs.BoolVar(&list, "list", false, "list the scenarios and exit")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write the harness's own CPU profile (load generator, receivers) to this file; the child's: -env IACC_PPROF_ADDR=…")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if list {
		for _, s := range bench.Scenarios() {
			fmt.Printf("%-8s %s\n", s.ID, s.Title)
		}
		return 0
	}
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scenarios = append(cfg.Scenarios, s)
		}
	}
	cfg.IntakeClients = nil
	for _, s := range strings.Split(intakeClients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			fmt.Fprintf(os.Stderr, "iaccbench: -intake-clients: %q is not a number from 1 to 4096\n", s)
			return 2
		}
		cfg.IntakeClients = append(cfg.IntakeClients, n)
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.ReadClients < 1 || cfg.Vendors < 1 || cfg.Items < 1 {
		fmt.Fprintln(os.Stderr, "iaccbench: -duration, -read-clients, -vendors and -items must be positive")
		return 2
	}
	if cfg.Root == "" {
		root, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "iaccbench:", err)
			return 2
		}
		cfg.Root = root
	}
	if quiet {
		cfg.Log = nil
	}

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "iaccbench: -cpuprofile:", err)
			return 2
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "iaccbench: -cpuprofile:", err)
			_ = f.Close()
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "iaccbench: -cpuprofile:", err)
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iaccbench:", err)
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	if strict && rep.Failed() {
		return 3
	}
	return 0
}

// moduleRoot walks up from the working directory to iacc's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/iacc/iacc\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the iacc module (no go.mod of github.com/iacc/iacc above the working directory); or pass -root")
		}
		dir = parent
	}
}
