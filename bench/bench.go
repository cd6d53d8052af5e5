package bench

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/store"
)

// Config is a run's settings (the flags of cmd/iaccbench).
type Config struct {
	Root        string // module root: where go.mod is and ./cmd/iacc builds from
	Binary      string // a prebuilt iacc binary; empty builds one into a temp dir
	MySQLServer string // DSN of the server without database, e.g. root@tcp(127.0.0.1:3306)/
	Database    string // dropped and recreated: iacc_bench
	RedisAddr   string
	RedisDB     int // reserved and flushed: 14

	Duration time.Duration // measured window of each step
	Warmup   time.Duration // before each measured window

	Scenarios     []string // ids or aliases; empty: all
	IntakeClients []int
	ReadClients   int
	ReadOrders    int // orders seeded for the reads scenario
	Vendors       int
	Items         int
	DrainTimeout  time.Duration // how long to wait for the worker's backlog after an intake step
	Rounds        int           // rounds of a throughput target's step, each between two ceiling steps
	QuietWait     time.Duration // before each step, wait this long at most for other processes to go quiet
	ChildEnv      []string      // extra KEY=VALUE for the iacc child (tuning experiments)

	Out string // JSON report path
	Log io.Writer
}

// DefaultConfig is what `make bench` runs: about 16 minutes.
func DefaultConfig() Config {
	return Config{
		Root:        ".",
		MySQLServer: "root@tcp(127.0.0.1:3306)/", Database: "iacc_bench",
		RedisAddr: "127.0.0.1:6379", RedisDB: 14,
		Duration: 10 * time.Second, Warmup: time.Second,
		IntakeClients: []int{1, 8, 32, 64}, ReadClients: 64, ReadOrders: 5000,
		Vendors: 16, Items: 5, DrainTimeout: 60 * time.Second, Rounds: 3,
		Out: "bench/results/latest.json", Log: os.Stderr,
	}
}

// Scenario is one entry of the list a run picks from.
type Scenario struct {
	ID      string   // flag name, e.g. "intake"
	Aliases []string // e.g. the number in the speed-goals list: "1"
	Title   string
	// Server: the scenario runs the iacc child (the binary is then built
	// before any measurement, so a build failure costs nothing).
	Server bool
	// Run measures and returns the scenario's rows. It starts the iacc
	// child with h.Server when it needs one and stops it with h.StopServer
	// before a step that must not share the CPU with it.
	Run func(ctx context.Context, h *Harness) ([]Row, error)
}

// Scenarios is the list of scenarios, in the order a full run executes them.
// Append new ones here.
func Scenarios() []Scenario {
	return []Scenario{
		intakeScenario(),
		intakeAPIScenario(),
		readsScenario(),
		pdfScenario(),
		jobsScenario(),
		e2eScenario(),
		backupScenario(),
		allocsScenario(),
	}
}

func selectScenarios(ids []string) ([]Scenario, error) {
	all := Scenarios()
	if len(ids) == 0 || (len(ids) == 1 && ids[0] == "all") {
		return all, nil
	}
	var out []Scenario
	for _, id := range ids {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.ID == id || slices.Contains(s.Aliases, id) })
		if i < 0 {
			var known []string
			for _, s := range all {
				known = append(known, s.ID)
			}
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", id, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Row is one line of the report: a measured step, a ceiling, or a check
// such as the server's RSS.
type Row struct {
	Scenario    string             `json:"scenario"`
	Step        string             `json:"step"`
	Clients     int                `json:"clients,omitempty"`
	OK          int                `json:"ok"`
	Errors      int                `json:"errors"`
	ErrorKinds  map[string]int     `json:"error_kinds,omitempty"`
	Throughput  float64            `json:"throughput_per_s"`
	P50ms       float64            `json:"p50_ms"`
	P95ms       float64            `json:"p95_ms"`
	P99ms       float64            `json:"p99_ms"`
	Ceiling     float64            `json:"ceiling_per_s,omitempty"`
	CeilingFrom string             `json:"ceiling_from,omitempty"`
	Ratio       float64            `json:"ratio,omitempty"`
	Value       string             `json:"value,omitempty"` // shown instead of the rate on check rows
	Target      string             `json:"target,omitempty"`
	Verdict     string             `json:"verdict,omitempty"` // PASS, FAIL, or empty: information only
	Notes       string             `json:"notes,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
}

func rowFrom(scenario, step string, st stepStats) Row {
	r := Row{Scenario: scenario, Step: step, Clients: st.Clients, OK: st.OK, Errors: st.Errors,
		Throughput: round2(st.Rate()), P50ms: ms(st.Lat.q(0.50)), P95ms: ms(st.Lat.q(0.95)), P99ms: ms(st.Lat.q(0.99)),
		Metrics: st.Metrics, Notes: strings.Join(st.Notes, "; ")}
	if q, ok := st.Metrics["db_statements"]; ok && st.OK > 0 {
		per := q / float64(st.OK)
		r.Metrics["db_statements_per_op"] = round2(per)
		r.note(fmt.Sprintf("db: %.1f statements/op", per))
	}
	if st.Errors > 0 {
		r.ErrorKinds = st.ErrorKinds
		r.check("0 errors", false)
		r.note(fmt.Sprintf("errors: %s", formatErrorKinds(st.ErrorKinds)))
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// setCeiling records the ceiling a row compares against.
func (r *Row) setCeiling(c Row) {
	if c.Throughput <= 0 {
		return
	}
	r.Ceiling, r.CeilingFrom = c.Throughput, c.Scenario+" / "+c.Step
	r.Ratio = round2(r.Throughput / c.Throughput)
}

// inRounds measures a target's step cfg.Rounds times, each round between
// two steps of its ceiling (C0 S1 C1 S2 C2 …: a ceiling step closes one
// round and opens the next). Round i's ratio is S_i to the mean of C_i-1
// and C_i. It returns the round with the median ratio; its notes list every
// round, and first, the ceiling measured earlier in the run. ceiling's
// argument says when it runs, for the progress lines.
//
// The machine's speed drifts within a run: a ceiling measured minutes away
// from the step, or a single round, says as much about the machine at that
// moment as about iacc.
func (h *Harness) inRounds(ctx context.Context, first Row, ceiling func(when string) (Row, error), measure func() (Row, error)) (Row, error) {
	type round struct {
		row           Row
		before, after float64
	}
	var done []round
	prev, err := ceiling("before round 1")
	if err != nil {
		return prev, err
	}
	for i := 1; i <= max(h.cfg.Rounds, 1); i++ {
		row, err := measure()
		if err != nil {
			return row, err
		}
		next, err := ceiling(fmt.Sprintf("after round %d", i))
		if err != nil {
			return row, err
		}
		if mean := (prev.Throughput + next.Throughput) / 2; mean > 0 {
			row.Ceiling = round2(mean)
			row.CeilingFrom = fmt.Sprintf("mean of %s / %s right before and right after this round", first.Scenario, first.Step)
			row.Ratio = round2(row.Throughput / mean)
		}
		done = append(done, round{row: row, before: prev.Throughput, after: next.Throughput})
		prev = next
		if ctx.Err() != nil {
			return row, ctx.Err()
		}
	}
	byRatio := slices.Clone(done)
	slices.SortFunc(byRatio, func(a, b round) int { return cmp.Compare(a.row.Ratio, b.row.Ratio) })
	med := byRatio[(len(byRatio)-1)/2] // the lower median for an even count
	row := med.row
	if row.Metrics == nil {
		row.Metrics = map[string]float64{}
	}
	row.Metrics["ceiling_before_per_s"], row.Metrics["ceiling_after_per_s"] = med.before, med.after
	row.Metrics["rounds"] = float64(len(done))
	row.Metrics["ratio_min"], row.Metrics["ratio_max"] = byRatio[0].row.Ratio, byRatio[len(byRatio)-1].row.Ratio
	parts := make([]string, len(done))
	for i, r := range done {
		parts[i] = fmt.Sprintf("%s/s vs %s→%s/s = %.2f", fmtRate(r.row.Throughput), fmtRate(r.before), fmtRate(r.after), r.row.Ratio)
	}
	row.note(fmt.Sprintf("median of %d rounds, each between two ceiling steps (%s; the ceiling was %s/s earlier in the run)",
		len(done), strings.Join(parts, ", "), fmtRate(first.Throughput)))
	return row, nil
}

// check adds a target to the row: PASS only if every check passes.
func (r *Row) check(target string, ok bool) {
	if r.Target != "" {
		r.Target += ", "
	}
	r.Target += target
	switch {
	case !ok:
		r.Verdict = "FAIL"
	case r.Verdict == "":
		r.Verdict = "PASS"
	}
}

func (r *Row) note(s string) {
	if r.Notes != "" {
		r.Notes += "; "
	}
	r.Notes += s
}

// Report is the JSON written to bench/results/latest.json.
type Report struct {
	StartedAt     time.Time      `json:"started_at"`
	Seconds       float64        `json:"seconds"`
	Interrupted   bool           `json:"interrupted,omitempty"`
	Error         string         `json:"error,omitempty"`
	Host          Host           `json:"host"`
	Settings      Settings       `json:"settings"`
	Caveat        string         `json:"caveat"`
	Warnings      []string       `json:"warnings,omitempty"`
	MachineChecks []MachineCheck `json:"machine_checks,omitempty"`
	Rows          []Row          `json:"rows"`
}

// Host describes the machine and the parts' versions.
type Host struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	MySQL      string `json:"mysql"`
	Redis      string `json:"redis"`
}

// Settings echoes the run's configuration.
type Settings struct {
	Scenarios     []string `json:"scenarios"`
	Duration      string   `json:"duration_per_step"`
	Warmup        string   `json:"warmup_per_step"`
	IntakeClients []int    `json:"intake_clients"`
	ReadClients   int      `json:"read_clients"`
	ReadOrders    int      `json:"read_orders"`
	Vendors       int      `json:"vendors"`
	Items         int      `json:"items_per_order"`
	Database      string   `json:"database"`
	RedisDB       int      `json:"redis_db"`
}

// Failed reports whether a row has a FAIL verdict.
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Rows, func(row Row) bool { return row.Verdict == "FAIL" })
}

// Run runs the selected scenarios and writes the table to out and the JSON
// report to cfg.Out. On Ctrl-C (ctx done) it stops the child, prints what it
// measured so far and returns ctx's error.
func Run(ctx context.Context, cfg Config, out io.Writer) (rep *Report, err error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	scen, err := selectScenarios(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	rep = &Report{StartedAt: time.Now().UTC(), Host: Host{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}}
	rep.Caveat = fmt.Sprintf("the load generator runs on the same %d cores as the server, MariaDB and Redis: "+
		"figures are for comparing with the ceilings of the same run, not absolute capacity", runtime.NumCPU())
	for _, s := range scen {
		rep.Settings.Scenarios = append(rep.Settings.Scenarios, s.ID)
	}
	rep.Settings.Duration, rep.Settings.Warmup = cfg.Duration.String(), cfg.Warmup.String()
	rep.Settings.IntakeClients, rep.Settings.ReadClients, rep.Settings.ReadOrders = cfg.IntakeClients, cfg.ReadClients, cfg.ReadOrders
	rep.Settings.Vendors, rep.Settings.Items = cfg.Vendors, cfg.Items
	rep.Settings.Database, rep.Settings.RedisDB = cfg.Database, cfg.RedisDB

	h, err := newHarness(ctx, cfg)
	if h != nil {
		defer h.Close()
	}
	if err == nil && slices.ContainsFunc(scen, func(s Scenario) bool { return s.Server }) {
		_, err = h.binary(ctx)
	}
	if err == nil {
		rep.Host.MySQL, rep.Host.Redis = h.mysqlVersion, h.redisVersion
		fmt.Fprintf(out, "iaccbench: %d CPUs, GOMAXPROCS %d, %s; MariaDB %s, Redis %s\n", rep.Host.CPUs, rep.Host.GOMAXPROCS,
			rep.Host.Go, rep.Host.MySQL, rep.Host.Redis)
		fmt.Fprintf(out, "NOTE: %s.\n\n", rep.Caveat)
		for _, s := range scen {
			h.logf("== scenario %s: %s", s.ID, s.Title)
			c, cerr := machineCheck(ctx, s.ID, machineCheckWindow, h.blobDir())
			if cerr != nil {
				err = fmt.Errorf("machine check before scenario %s: %w", s.ID, cerr)
				break
			}
			rep.MachineChecks = append(rep.MachineChecks, c)
			h.logf("machine check: SHA-256 on one core %.0f MB/s, on %d goroutines %.2f cores' worth; loopback round trip %.1f µs; memory copy %.0f MB/s; page fault %.1f µs; file create %.0f µs",
				c.OneCoreMB, c.CPUs, c.Cores, c.LoopbackUS, c.MemCopyMB, c.PageFaultUS, c.FileCreate)
			rows, serr := s.Run(ctx, h)
			rep.Rows = append(rep.Rows, rows...)
			if serr != nil {
				err = fmt.Errorf("scenario %s: %w", s.ID, serr)
				break
			}
		}
		h.StopServer()
		if h.server == nil && h.serverLog != "" {
			rep.Rows = append(rep.Rows, h.childLogRow())
		}
	}
	rep.Seconds = round2(time.Since(rep.StartedAt).Seconds())
	rep.Warnings = noiseWarnings(rep.Rows)
	_, mw := machineCheckSummary(rep.MachineChecks)
	rep.Warnings = append(rep.Warnings, mw...)
	if err != nil {
		rep.Error = err.Error()
		rep.Interrupted = errors.Is(err, context.Canceled)
	}
	printTable(out, rep)
	if werr := writeJSON(cfg.outPath(), rep); werr != nil && err == nil {
		err = werr
	} else if werr == nil {
		fmt.Fprintf(out, "\nwrote %s (%.0f s)\n", cfg.outPath(), rep.Seconds)
	}
	return rep, err
}

// outPath is where the JSON report goes: cfg.Out as given when it is
// absolute, else relative to the module root.
func (cfg Config) outPath() string {
	if filepath.IsAbs(cfg.Out) {
		return cfg.Out
	}
	return filepath.Join(cfg.Root, cfg.Out)
}

func writeJSON(path string, rep *Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func printTable(w io.Writer, rep *Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSTEP\tTHROUGHPUT/s\tP50\tP95\tP99\tCEILING/s\tRATIO\tTARGET\tRESULT\tERRORS\tNOTES")
	for _, r := range rep.Rows {
		rate, p50, p95, p99, errs := fmtRate(r.Throughput), fmtMS(r.P50ms), fmtMS(r.P95ms), fmtMS(r.P99ms), fmt.Sprint(r.Errors)
		if r.Value != "" {
			rate, p50, p95, p99, errs = r.Value, "", "", "", ""
		}
		ceil, ratio := "", ""
		if r.Ceiling > 0 {
			ceil, ratio = fmtRate(r.Ceiling), fmt.Sprintf("%.2f", r.Ratio)
		}
		target, verdict := r.Target, r.Verdict
		if target == "" {
			target, verdict = "—", "info"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Step, rate, p50, p95, p99,
			ceil, ratio, target, verdict, errs, r.Notes)
	}
	_ = tw.Flush()
	if line, _ := machineCheckSummary(rep.MachineChecks); line != "" {
		fmt.Fprintf(w, "\n%s\n", line)
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "\nWARNING: %s\n", warning)
	}
	if rep.Error != "" {
		fmt.Fprintf(w, "\nrun stopped early: %s\n", rep.Error)
	}
}

func fmtRate(f float64) string {
	if f >= 100 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

func fmtMS(f float64) string {
	switch {
	case f == 0:
		return "-"
	case f < 10:
		return fmt.Sprintf("%.2fms", f)
	case f < 100:
		return fmt.Sprintf("%.1fms", f)
	}
	return fmt.Sprintf("%.0fms", f)
}

// Harness is what scenarios share: the database, Redis, the iacc child.
type Harness struct {
	cfg          Config
	tmp          string
	db           *store.DB
	rdb          *redis.Client
	releaseRedis func()
	admin        *store.DB // holds the database's reservation (reserveDatabase)
	adminConn    *sql.Conn
	mysqlVersion string
	redisVersion string

	smtp       *smtpSink
	bin        string
	jwtSecret  string
	secretKeys string // IACC_SECRET_KEYS, one per run like jwtSecret
	server     *child
	serverLog  string
	fixtures   map[string]fixture

	intakeCeilings  []Row          // measured once per run, shared by the intake scenarios
	ceilingPayloads []orderPayload // the ceiling's own tenant's orders
}

func (h *Harness) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Close stops the child and releases everything (idempotent).
func (h *Harness) Close() {
	h.StopServer()
	if h.smtp != nil {
		h.smtp.close()
		h.smtp = nil
	}
	if h.releaseRedis != nil {
		h.releaseRedis()
		h.releaseRedis = nil
	}
	if h.rdb != nil {
		_ = h.rdb.Close()
		h.rdb = nil
	}
	if h.db != nil {
		_ = h.db.Close()
		h.db = nil
	}
	if h.adminConn != nil {
		// Released here rather than left to the connection's end: the
		// server drops a closed connection's locks asynchronously, so a run
		// started right after this one could still find it held. A lock
		// this session does not hold (another run's) is left as it is.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = h.adminConn.ExecContext(ctx, "DO RELEASE_LOCK(?)", databaseLockName(h.cfg.Database))
		cancel()
		_ = h.adminConn.Close()
		h.adminConn = nil
	}
	if h.admin != nil {
		_ = h.admin.Close()
		h.admin = nil
	}
	if h.tmp != "" {
		_ = os.RemoveAll(h.tmp)
		h.tmp = ""
	}
}

// cpuProbe returns a probe accounting the CPU of the child (when running),
// MariaDB, Redis and the harness. MariaDB and Redis are looked up at each
// window's start: tests running meanwhile may restart them.
func (h *Harness) cpuProbe() *cpuProbe {
	return newCPUProbe(func() map[string][]int {
		procs := map[string][]int{"bench": {os.Getpid()}}
		if h.server != nil {
			procs["iacc"] = []int{h.server.pid}
		}
		if pids := findPIDs("mariadbd", "mysqld"); len(pids) > 0 {
			procs["db"] = pids
		}
		if pids := findPIDs("redis-server"); len(pids) > 0 {
			procs["redis"] = pids
		}
		return procs
	}, []string{"iacc", "db", "redis", "bench"})
}

// noiseThreshold is how much CPU (in cores) processes other than ours may
// use during a step before the run is flagged as unreliable.
const noiseThreshold = 0.25

// noiseWarnings flags steps during which other processes (a test run, a
// build) used the CPU the benchmark assumes it has.
func noiseWarnings(rows []Row) []string {
	worst, where, n := 0.0, "", 0
	for _, r := range rows {
		if o := r.Metrics["cpu_other_cores"]; o > noiseThreshold {
			n++
			if o > worst {
				worst, where = o, r.Scenario+" / "+r.Step
			}
		}
	}
	if n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("other processes used more than %.2f cores during %d step(s) (worst: %.2f cores, %s); "+
		"those figures are low and noisy — rerun on a quiet machine (or with -quiet-wait 60s)", noiseThreshold, n, worst, where)}
}

// step runs one closed-loop step, first waiting (up to cfg.QuietWait) for
// the machine to be quiet.
func (h *Harness) step(ctx context.Context, spec loadSpec) (stepStats, error) {
	waited, busy := h.waitQuiet(ctx)
	st, err := closedLoop(ctx, spec)
	if waited > time.Second {
		st.Notes = append(st.Notes, fmt.Sprintf("waited %s for a quiet machine", waited.Round(time.Second)))
	}
	if busy >= noiseThreshold {
		st.Notes = append(st.Notes, fmt.Sprintf("machine busy before the step (%.2f cores)", busy))
	}
	return st, err
}

// waitQuiet waits until the machine, apart from the harness and an idle
// child, uses less than noiseThreshold cores (sampled over 500 ms), for at
// most cfg.QuietWait. It returns how long it waited and the last sample.
func (h *Harness) waitQuiet(ctx context.Context) (time.Duration, float64) {
	if h.cfg.QuietWait <= 0 {
		return 0, 0
	}
	start := time.Now()
	for {
		p := h.cpuProbe()
		p.begin()
		if !sleepUntil(ctx, time.Now().Add(500*time.Millisecond)) {
			return time.Since(start), 0
		}
		st := stepStats{Metrics: map[string]float64{}}
		p.end(&st)
		busy := st.Metrics["cpu_total_cores"] - st.Metrics["cpu_bench_cores"] - st.Metrics["cpu_iacc_cores"]
		if busy < noiseThreshold || time.Since(start) >= h.cfg.QuietWait {
			return time.Since(start), busy
		}
	}
}

// plural formats "1 client", "8 clients".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
