package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// loadSpec is one closed-loop step: Clients workers each issue one request
// after another for Warmup+Duration; only what completes inside the
// measured window (after the warm-up) counts.
type loadSpec struct {
	Clients  int
	Warmup   time.Duration
	Duration time.Duration
	// NewWorker returns worker w's request function; it is called once per
	// worker before the clock starts, so per-worker state (a request object,
	// a random source) lives in its closure.
	NewWorker func(w int) func() error
	// Probes observe the measured window (CPU, RSS).
	Probes []probe
}

// stepStats is what a step measured.
type stepStats struct {
	Clients    int
	Window     time.Duration
	OK         int // successes in the window
	Errors     int // failures in the window
	All        int // every operation of the step, warm-up included
	ErrorKinds map[string]int
	Lat        latencies
	Metrics    map[string]float64
	Notes      []string
}

// Rate is successful operations per second of the measured window.
func (s stepStats) Rate() float64 {
	if s.Window <= 0 {
		return 0
	}
	return float64(s.OK) / s.Window.Seconds()
}

type workerResult struct {
	n    int
	lat  []time.Duration
	errs map[string]int
}

// closedLoop runs a step. It returns ctx's error if the run was interrupted
// (the stats then cover what was measured so far).
func closedLoop(ctx context.Context, s loadSpec) (stepStats, error) {
	workers := make([]func() error, s.Clients)
	for w := range workers {
		workers[w] = s.NewWorker(w)
	}
	results := make([]workerResult, s.Clients)
	start := time.Now()
	mStart := start.Add(s.Warmup)
	end := mStart.Add(s.Duration)
	st := stepStats{Clients: s.Clients, Window: s.Duration, ErrorKinds: map[string]int{}, Metrics: map[string]float64{}}

	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		if !sleepUntil(ctx, mStart) {
			return
		}
		for _, p := range s.Probes {
			p.begin()
		}
		sleepUntil(ctx, end)
		for _, p := range s.Probes {
			p.end(&st)
		}
	}()

	var wg sync.WaitGroup
	for w, do := range workers {
		wg.Go(func() {
			r := &results[w]
			r.errs = map[string]int{}
			r.lat = make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := do()
				t1 := time.Now()
				r.n++
				if t1.Before(mStart) || t1.After(end) {
					continue
				}
				if err != nil {
					r.errs[errorKind(err)]++
					continue
				}
				r.lat = append(r.lat, t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	<-probesDone

	n := 0
	for _, r := range results {
		n += len(r.lat)
	}
	st.Lat = make(latencies, 0, n)
	for _, r := range results {
		st.All += r.n
		st.Lat = append(st.Lat, r.lat...)
		for k, v := range r.errs {
			st.ErrorKinds[k] += v
			st.Errors += v
		}
	}
	st.OK = len(st.Lat)
	st.Lat.sort()
	if err := ctx.Err(); err != nil {
		if el := time.Since(mStart); el > 0 && el < s.Duration {
			st.Window = el
		}
		return st, err
	}
	return st, nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// statusError is a non-2xx answer.
type statusError struct {
	Code int
	Body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// errorKind groups errors for the report: by status code, or by message.
func errorKind(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d", se.Code)
	}
	msg := err.Error()
	// Group driver errors by number ("update vendor 7 balance: Error 1213
	// (40001): Deadlock found…" and the same for vendor 9 are one kind).
	if m := mysqlErrRe.FindStringSubmatch(msg); m != nil {
		msg = "MySQL " + m[1] + ": " + m[2]
	} else {
		msg = digitsRe.ReplaceAllString(msg, "N")
	}
	if len(msg) > 70 {
		msg = msg[:70] + "…"
	}
	return msg
}

var (
	mysqlErrRe = regexp.MustCompile(`Error (\d+) \(\w+\): (.*)`)
	digitsRe   = regexp.MustCompile(`\d+`)
)

// formatErrorKinds lists the three most frequent kinds.
func formatErrorKinds(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, 0, 4)
	for i, k := range keys {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more kinds", len(keys)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// latencies is a sorted record of every measured operation's latency:
// exact percentiles, no histogram buckets (a step holds at most a few
// hundred thousand values).
type latencies []time.Duration

func (l latencies) sort() { slices.Sort(l) }

// q returns the q-quantile (0 < q ≤ 1), nearest-rank; 0 when empty.
func (l latencies) q(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(l)))) - 1
	return l[max(0, min(i, len(l)-1))]
}

// probe observes a step's measured window.
type probe interface {
	begin()
	end(st *stepStats)
}

// cpuProbe accounts the CPU used during the window by the processes that
// share the machine: the iacc child, MariaDB, Redis, the harness itself,
// and whatever else ran ("other"). A process that exits or restarts during
// the window (a test restarting Redis) is left out rather than miscounted.
type cpuProbe struct {
	procs func() map[string][]int // label -> pids, looked up at begin
	order []string
	wall  time.Time
	pids  map[string][]int
	t0    map[int]int64
	busy0 int64
}

func newCPUProbe(procs func() map[string][]int, order []string) *cpuProbe {
	return &cpuProbe{procs: procs, order: order}
}

func (p *cpuProbe) ticks() (map[int]int64, int64) {
	out := map[int]int64{}
	for _, pids := range p.pids {
		for _, pid := range pids {
			if t, err := readCPUTicks(pid); err == nil {
				out[pid] = t
			}
		}
	}
	busy, _ := machineBusyTicks()
	return out, busy
}

func (p *cpuProbe) begin() {
	p.pids = p.procs()
	p.wall = time.Now()
	p.t0, p.busy0 = p.ticks()
}

func (p *cpuProbe) end(st *stepStats) {
	t1, busy1 := p.ticks()
	secs := time.Since(p.wall).Seconds()
	if secs <= 0 {
		return
	}
	var parts []string
	var known float64
	for _, label := range p.order {
		pids, ok := p.pids[label]
		if !ok {
			continue
		}
		var ticks int64
		for _, pid := range pids {
			a, ok0 := p.t0[pid]
			b, ok1 := t1[pid]
			if ok0 && ok1 && b >= a {
				ticks += b - a
			}
		}
		cores := float64(ticks) / clockTicks / secs
		known += cores
		st.Metrics["cpu_"+label+"_cores"] = round2(cores)
		parts = append(parts, fmt.Sprintf("%s %.2f", label, cores))
	}
	if busy1 > 0 && p.busy0 > 0 {
		total := float64(busy1-p.busy0) / clockTicks / secs
		other := math.Max(0, total-known)
		st.Metrics["cpu_total_cores"] = round2(total)
		st.Metrics["cpu_other_cores"] = round2(other)
		parts = append(parts, fmt.Sprintf("other %.2f", other))
	}
	st.Notes = append(st.Notes, "cpu "+strings.Join(parts, " "))
}

// rssProbe samples a process's RSS every 50 ms during the window and keeps
// the peak.
type rssProbe struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	peak int64
}

func newRSSProbe(pid int) *rssProbe { return &rssProbe{pid: pid} }

func (p *rssProbe) begin() {
	p.stop, p.done, p.peak = make(chan struct{}), make(chan struct{}), 0
	go func() {
		defer close(p.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, err := readRSS(p.pid); err == nil && rss > p.peak {
				p.peak = rss
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (p *rssProbe) end(st *stepStats) {
	close(p.stop)
	<-p.done
	if p.peak > 0 {
		st.Metrics["rss_peak_mb"] = round2(mb(p.peak))
		st.Notes = append(st.Notes, fmt.Sprintf("rss peak %.0f MB", mb(p.peak)))
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }
