// Command iaccfaults runs iacc's fault suite (see package faults and
// docs/faults.md): it builds the iacc binary, runs each scenario against
// child processes, a private database and a private redis-server, prints
// a table and exits 1 if any scenario failed (2 on a usage or set-up error).
//
//	go run ./faults/cmd/iaccfaults                 # all ten scenarios
//	go run ./faults/cmd/iaccfaults -run redis      # those whose "<n>-<name>" matches
//	go run ./faults/cmd/iaccfaults -short -run '^[1-3]-'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/iacc/iacc/faults"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		runRe    = flag.String("run", "", "run only the scenarios whose `<n>-<name>` matches this regexp")
		short    = flag.Bool("short", false, "shorten every duration (local iteration)")
		parallel = flag.Int("parallel", 2, "scenarios run at once (8, which judges latencies, runs first and alone)")
		mysqlDSN = flag.String("mysql", envOr("IACC_FAULTS_MYSQL", "root@tcp(127.0.0.1:3306)/"), "MySQL/MariaDB server, user@tcp(host:port)/ (IACC_FAULTS_MYSQL)")
		redisBin = flag.String("redis-server", envOr("IACC_FAULTS_REDIS_SERVER", "redis-server"), "redis-server binary (IACC_FAULTS_REDIS_SERVER)")
		bin      = flag.String("bin", "", "a prebuilt iacc binary (default: go build ./cmd/iacc)")
		keep     = flag.Bool("keep", false, "keep the children's logs even when every scenario passes")
		verbose  = flag.Bool("v", false, "print the suite's progress log")
		list     = flag.Bool("list", false, "list the scenarios and exit")
		timeout  = flag.Duration("timeout", 20*time.Minute, "give up (and fail) after this long")
		extraEnv = envFlag{}
	)
	flag.Var(extraEnv, "env", "`KEY=VALUE` added to every iacc child's environment, last (repeatable; to try a setting or a fix)")
	flag.Parse()
	if *list {
		for _, sc := range faults.Scenarios() {
			fmt.Printf("%-28s %s\n", sc.ID(), sc.Proves)
		}
		return 0
	}
	var re *regexp.Regexp
	if *runRe != "" {
		var err error
		if re, err = regexp.Compile(*runRe); err != nil {
			fmt.Fprintln(os.Stderr, "iaccfaults: -run:", err)
			return 2
		}
	}
	modDir, err := moduleDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "iaccfaults:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	opts := faults.Options{Run: re, Short: *short, Parallel: *parallel, MySQL: *mysqlDSN, RedisServer: *redisBin,
		Binary: *bin, ModuleDir: modDir, Keep: *keep, Verbose: *verbose, Out: os.Stdout, Env: extraEnv}
	start := time.Now()
	s, err := faults.New(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iaccfaults:", err)
		return 2
	}
	if len(s.Selected()) == 0 {
		fmt.Fprintf(os.Stderr, "iaccfaults: -run %q selects no scenario (see -list)\n", *runRe)
		s.Close(false)
		return 2
	}
	// SIGINT/SIGTERM: kill every child at once, then let the scenarios
	// clean up (drop their databases) as their contexts end.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "iaccfaults: %s: stopping every child\n", sig)
		s.KillAll()
		cancel()
	}()
	results := s.Run(ctx)
	failed := false
	for _, r := range results {
		failed = failed || !r.Pass
	}
	fmt.Println()
	faults.PrintTable(os.Stdout, results, time.Since(start))
	s.Close(failed)
	if failed {
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// moduleDir is the directory of the iacc module (go.mod).
func moduleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run iaccfaults inside the iacc module")
	}
	return filepath.Dir(mod), nil
}

// envFlag collects -env KEY=VALUE.
type envFlag map[string]string

func (f envFlag) String() string { return "" }

func (f envFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(k, "IACC_") {
		return fmt.Errorf("want IACC_NAME=value, got %q", v)
	}
	f[k] = val
	return nil
}
