package faults

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// rootDSNRe matches the server DSN the suite accepts: user@tcp(host:port)/.
var rootDSNRe = regexp.MustCompile(`^([A-Za-z0-9_.-]+)@tcp\(([^)]+)\)/?$`)

// Options configure a run of the suite.
type Options struct {
	// Run selects scenarios whose "<n>-<name>" matches (nil: all).
	Run *regexp.Regexp
	// Short shortens every duration (local iteration).
	Short bool
	// Parallel is how many scenarios run at once.
	Parallel int
	// MySQL is the root DSN of the server (no database).
	MySQL string
	// RedisServer is the redis-server binary.
	RedisServer string
	// Binary is a prebuilt iacc; "" builds ./cmd/iacc.
	Binary string
	// ModuleDir is the iacc module (where ./cmd/iacc is).
	ModuleDir string
	// Keep keeps the work directory (children's logs) even when all pass.
	Keep bool
	// Verbose streams the suite's own log lines to stderr.
	Verbose bool
	// Out receives the progress lines and the table.
	Out io.Writer
	// Env is extra environment for every iacc child, applied last (to try a
	// setting or a fix against the scenarios, e.g. IACC_RECONCILE_LOOKBACK).
	Env map[string]string
}

// Suite runs scenarios.
type Suite struct {
	opts      Options
	bin       string
	workDir   string
	reaper    *reaper
	mysqlAddr string
	mysqlUser string
	rootDSN   string
	outMu     sync.Mutex
}

// Result is one scenario's line of the table.
type Result struct {
	Num      int
	Name     string
	Proves   string
	Events   int
	Expected int
	Seen     int
	Dups     int
	Lost     int
	Resent   int
	Recover  time.Duration // < 0: not applicable
	Pass     bool
	Failures []string
	Notes    []string
	Elapsed  time.Duration
	Dir      string
}

func (r *Result) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// fromTally copies the counts of the final tally.
func (r *Result) fromTally(t Tally) {
	r.Events = t.Events
	r.Expected, r.Seen, r.Dups, r.Resent = t.Totals()
	r.Lost = r.Expected - r.Seen
	r.note("effects: %s", t.Summary())
	if len(t.Missing) > 0 {
		r.note("missing e.g.: %s", strings.Join(t.Missing, "; "))
	}
	if len(t.Extra) > 0 {
		r.note("extra: %s", strings.Join(t.Extra, "; "))
	}
}

// Scenario is one fault and what must hold after it.
type Scenario struct {
	Num    int
	Name   string
	Proves string
	// Long scenarios are started first.
	Long bool
	// Alone scenarios judge latencies against a baseline of their own: they
	// run before the others, with no other scenario at once. Another
	// scenario's start (migrations, processes) or burst on the same cores
	// would show in their tail as if it were theirs.
	Alone bool
	Run   func(ctx context.Context, s *Suite, r *Result) error
}

// ID is "<n>-<name>", what -run matches.
func (sc Scenario) ID() string { return fmt.Sprintf("%d-%s", sc.Num, sc.Name) }

// New prepares a suite: builds the binary unless one is given.
func New(ctx context.Context, opts Options) (*Suite, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.RedisServer == "" {
		opts.RedisServer = "redis-server"
	}
	if p, err := exec.LookPath(opts.RedisServer); err != nil {
		return nil, fmt.Errorf("redis-server: %w (install redis-server or pass -redis-server)", err)
	} else {
		opts.RedisServer = p
	}
	m := rootDSNRe.FindStringSubmatch(opts.MySQL)
	if m == nil {
		return nil, fmt.Errorf("-mysql %q: want user@tcp(host:port)/ (no password: the suite proxies MySQL over TCP)", opts.MySQL)
	}
	s := &Suite{opts: opts, reaper: newReaper(), mysqlAddr: m[2], mysqlUser: m[1], rootDSN: opts.MySQL}
	var err error
	if s.workDir, err = os.MkdirTemp("", "iaccfaults-"); err != nil {
		return nil, err
	}
	s.bin = opts.Binary
	if s.bin == "" {
		s.bin = filepath.Join(s.workDir, "iacc")
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/iacc")
		cmd.Dir = opts.ModuleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/iacc: %w\n%s", err, out)
		}
		s.printf("built %s in %s\n", s.bin, time.Since(start).Round(time.Millisecond))
	}
	return s, nil
}

func (s *Suite) printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Out, format, args...)
}

// mysqlDSN is the direct DSN of database name.
func (s *Suite) mysqlDSN(name string) string {
	return fmt.Sprintf("%s@tcp(%s)/%s", s.mysqlUser, s.mysqlAddr, name)
}

// short picks the short or the full value.
func (s *Suite) short(full, short time.Duration) time.Duration {
	if s.opts.Short {
		return short
	}
	return full
}

func (s *Suite) shortN(full, short int) int {
	if s.opts.Short {
		return short
	}
	return full
}

// Close kills every child left and removes the work directory unless kept.
func (s *Suite) Close(keep bool) {
	s.reaper.killAll()
	if keep || s.opts.Keep {
		s.printf("children's logs kept in %s\n", s.workDir)
		return
	}
	_ = os.RemoveAll(s.workDir)
}

// KillAll kills every child (signal handler).
func (s *Suite) KillAll() { s.reaper.killAll() }

// Selected returns the scenarios -run selects.
func (s *Suite) Selected() []Scenario {
	var out []Scenario
	for _, sc := range Scenarios() {
		if s.opts.Run == nil || s.opts.Run.MatchString(sc.ID()) {
			out = append(out, sc)
		}
	}
	return out
}

// Run runs the selected scenarios and returns their results in scenario
// order: those that must run alone first, one at a time, then the others,
// at most Parallel at once, long ones first.
func (s *Suite) Run(ctx context.Context) []*Result { return s.run(ctx, s.Selected()) }

func (s *Suite) run(ctx context.Context, scs []Scenario) []*Result {
	order := runOrder(scs)
	results := make(map[int]*Result)
	var mu sync.Mutex
	sem := make(chan struct{}, s.opts.Parallel)
	var wg sync.WaitGroup
	for _, sc := range order {
		// An Alone scenario takes every slot: it starts once the scenarios
		// before it have ended, and the next waits for it.
		slots := 1
		if sc.Alone {
			slots = s.opts.Parallel
		}
		for range slots {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(sc Scenario) {
			defer wg.Done()
			defer func() {
				for range slots {
					<-sem
				}
			}()
			r := s.runOne(ctx, sc)
			mu.Lock()
			results[sc.Num] = r
			mu.Unlock()
			verdict := "PASS"
			if !r.Pass {
				verdict = "FAIL"
			}
			s.printf("%-4s %-28s %6s  %s\n", verdict, sc.ID(), r.Elapsed.Round(time.Second), firstOr(r.Failures, ""))
		}(sc)
	}
	wg.Wait()
	var out []*Result
	for _, sc := range scs {
		if r, ok := results[sc.Num]; ok {
			out = append(out, r)
		} else {
			out = append(out, &Result{Num: sc.Num, Name: sc.Name, Proves: sc.Proves, Recover: -1, Failures: []string{"not run (interrupted)"}})
		}
	}
	return out
}

// runOrder is the order scenarios start in: Alone ones, then Long ones,
// then the rest, each group in scenario order.
func runOrder(scs []Scenario) []Scenario {
	rank := func(sc Scenario) int {
		switch {
		case sc.Alone:
			return 0
		case sc.Long:
			return 1
		}
		return 2
	}
	order := append([]Scenario(nil), scs...)
	sort.SliceStable(order, func(i, j int) bool { return rank(order[i]) < rank(order[j]) })
	return order
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// runOne runs a scenario, turning a panic or an error into a failure.
func (s *Suite) runOne(ctx context.Context, sc Scenario) (r *Result) {
	r = &Result{Num: sc.Num, Name: sc.Name, Proves: sc.Proves, Recover: -1}
	start := time.Now()
	s.printf("RUN  %s\n", sc.ID())
	defer func() {
		if p := recover(); p != nil {
			r.fail("panic: %v\n%s", p, debug.Stack())
		}
		r.Elapsed = time.Since(start)
		r.Pass = len(r.Failures) == 0
	}()
	if err := sc.Run(ctx, s, r); err != nil {
		r.fail("%v", err)
	}
	if r.Lost > 0 {
		r.fail("%d effects lost", r.Lost)
	}
	if r.Dups > 0 {
		r.fail("%d duplicate effects", r.Dups)
	}
	return r
}

// PrintTable writes the results table and the notes.
func PrintTable(w io.Writer, rs []*Result, total time.Duration) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SCENARIO\tEVENTS\tEFFECTS EXPECTED\tEFFECTS SEEN\tDUPLICATES\tLOST\tRESENT (same id)\tTIME TO RECOVER\tRESULT\t")
	for _, r := range rs {
		rec := "-"
		if r.Recover >= 0 {
			rec = r.Recover.Round(100 * time.Millisecond).String()
		}
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%d-%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r.Num, r.Name, r.Events, r.Expected, r.Seen, r.Dups, r.Lost, r.Resent, rec, verdict)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rs {
		fmt.Fprintf(w, "%d-%s (%s; %s):\n", r.Num, r.Name, r.Proves, r.Elapsed.Round(time.Second))
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  FAIL: %s\n", f)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
		if r.Dir != "" && !r.Pass {
			fmt.Fprintf(w, "  logs: %s\n", r.Dir)
		}
	}
	pass := 0
	for _, r := range rs {
		if r.Pass {
			pass++
		}
	}
	fmt.Fprintf(w, "\n%d of %d scenarios passed in %s\n", pass, len(rs), total.Round(time.Second))
}
