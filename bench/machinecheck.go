package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MachineCheck is what the machine gave the harness right before a scenario:
//   - a fixed CPU-bound loop (SHA-256 of 4 KiB blocks, no memory traffic to
//     speak of) on one goroutine, and on one goroutine per CPU;
//   - one-byte round trips over a loopback TCP connection, the pattern of
//     every request, statement and Redis call in the scenarios;
//   - copying 32 MiB buffers (memory bandwidth, shared with the host's
//     other tenants);
//   - the cost of a page fault on memory the process never had;
//   - the cost of creating a small file in the child's blob directory, as
//     every rendered PDF does (on the reference VM's ext4 it varied from
//     about 20 µs to over 1 ms with the directory, highest near many
//     recently deleted files).
//
// On a shared host all of these move with the hour: a slow core, fewer cores
// than the machine has, slow wake-ups, memory or page faults make every
// absolute target (p99s, 200 orders/s) harder, whatever the code.
type MachineCheck struct {
	Before      string  `json:"before"`                 // scenario id
	OneCoreMB   float64 `json:"one_core_mb_per_s"`      // SHA-256 throughput on one goroutine
	AllMB       float64 `json:"all_cores_mb_per_s"`     // on runtime.NumCPU() goroutines
	Cores       float64 `json:"cores_available"`        // AllMB / OneCoreMB
	CPUs        int     `json:"cpus"`                   // runtime.NumCPU()
	LoopbackUS  float64 `json:"loopback_round_trip_us"` // mean, one connection
	MemCopyMB   float64 `json:"memory_copy_mb_per_s"`   // one goroutine, 32 MiB buffers
	PageFaultUS float64 `json:"page_fault_us"`          // per fresh 4 KiB page (0: not measured)
	FileCreate  float64 `json:"file_create_us"`         // create, write 3 KB, close, in the blob dir (0: not measured)
	Window      string  `json:"window_per_measurement"` // how long each loop ran
}

const machineCheckWindow = 300 * time.Millisecond

// machineCheck takes each reading, the loops running for window each; the
// file creation one in blobDir, when it is not empty.
func machineCheck(ctx context.Context, before string, window time.Duration, blobDir string) (MachineCheck, error) {
	one, err := hashRate(ctx, 1, window)
	if err != nil {
		return MachineCheck{}, err
	}
	n := runtime.NumCPU()
	all, err := hashRate(ctx, n, window)
	if err != nil {
		return MachineCheck{}, err
	}
	rtt, err := loopbackRoundTrip(ctx, window)
	if err != nil {
		return MachineCheck{}, err
	}
	copyMB, err := memCopyRate(ctx, window)
	if err != nil {
		return MachineCheck{}, err
	}
	fault, err := freshPageCost(64 << 20)
	if err != nil {
		return MachineCheck{}, err
	}
	var create time.Duration
	if blobDir != "" {
		if create, err = fileCreateCost(blobDir, 256); err != nil {
			return MachineCheck{}, err
		}
	}
	c := MachineCheck{Before: before, OneCoreMB: round2(one), AllMB: round2(all), CPUs: n, Window: window.String(),
		LoopbackUS: round2(float64(rtt.Nanoseconds()) / 1e3), MemCopyMB: round2(copyMB), PageFaultUS: round2(float64(fault.Nanoseconds()) / 1e3),
		FileCreate: round2(float64(create.Nanoseconds()) / 1e3)}
	if one > 0 {
		c.Cores = round2(all / one)
	}
	return c, nil
}

// memCopyRate is the MB/s at which one goroutine copies a 32 MiB buffer
// into another (both touched first: no page faults in the window).
func memCopyRate(ctx context.Context, window time.Duration) (float64, error) {
	const size = 32 << 20
	src, dst := make([]byte, size), make([]byte, size)
	for i := 0; i < size; i += 4096 {
		src[i], dst[i] = 1, 1
	}
	n, start := 0, time.Now()
	for time.Since(start) < window && ctx.Err() == nil {
		copy(dst, src)
		n++
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(n) * size / 1e6 / time.Since(start).Seconds(), nil
}

// fileCreateCost is the mean time to create a file in a new directory under
// dir (made if missing), write 3 KB to it and close it, over n files. No
// fsync: that is the disk's cost, not the allocator's.
//
// The files stay: with the blobs, they go when the harness removes its temp
// dir; a blob dir that -env put elsewhere keeps them, as it keeps the
// blobs. Deleting them here would slow down the very thing measured: ext4
// without a journal, as on this project's VMs, passes over every inode of a
// block group deleted in the last minute (six while its inode table block
// awaits writeback: the kernel's recently_deleted) each time it allocates
// one there, so 256 deleted files make every PDF the scenario then stores
// cost up to 250 µs more.
func fileCreateCost(dir string, n int) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("file check: %w", err)
	}
	sub, err := os.MkdirTemp(dir, ".machine-check-")
	if err != nil {
		return 0, fmt.Errorf("file check: %w", err)
	}
	data := make([]byte, 3000)
	start := time.Now()
	for i := range n {
		f, err := os.OpenFile(filepath.Join(sub, strconv.Itoa(i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, fmt.Errorf("file check: %w", err)
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return 0, fmt.Errorf("file check: %w", werr)
		}
	}
	return time.Since(start) / time.Duration(max(n, 1)), nil
}

// loopbackRoundTrip is the mean time of a one-byte round trip to an echo
// goroutine over 127.0.0.1, measured for window.
func loopbackRoundTrip(ctx context.Context, window time.Duration) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loopback check: %w", err)
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		echoed <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("loopback check: %w", err)
	}
	b := []byte{0}
	n, start := 0, time.Now()
	for time.Since(start) < window && ctx.Err() == nil {
		if _, err := c.Write(b); err != nil {
			c.Close()
			return 0, fmt.Errorf("loopback check: %w", err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			c.Close()
			return 0, fmt.Errorf("loopback check: %w", err)
		}
		n++
	}
	took := time.Since(start)
	if err := c.Close(); err != nil {
		return 0, fmt.Errorf("loopback check: %w", err)
	}
	if err := <-echoed; err != nil {
		return 0, fmt.Errorf("loopback check: echo: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return took / time.Duration(max(n, 1)), nil
}

// hashRate is the MB/s that g goroutines hash together during window.
func hashRate(ctx context.Context, g int, window time.Duration) (float64, error) {
	var blocks atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range g {
		wg.Go(func() {
			var buf [4096]byte
			for !stop.Load() {
				sum := sha256.Sum256(buf[:])
				buf[0] ^= sum[0]
				blocks.Add(1)
			}
		})
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(blocks.Load()) * 4096 / 1e6 / time.Since(start).Seconds(), nil
}

// fewCoresFraction: a check that found fewer than this fraction of the CPUs
// makes the run end with a WARNING.
const fewCoresFraction = 0.75

// slowLoopbackUS: a check whose loopback round trip took longer than this
// makes the run end with a WARNING. On the 2-core VM the figures in
// README.md come from, the round trip is 4.7–5.4 µs in the hours when every
// target holds, and 17–25 µs in the slow phases when the absolute ones fail
// (CPU per order end to end 15–16 ms instead of 9–10): there, each request,
// statement and Redis call costs several times more system time, while
// the CPU-bound loop and the cores' worth stay the same.
const slowLoopbackUS = 10

// machineCheckSummary is the line printed under the table (each reading's
// range over the run, to compare runs with), and warnings when a check found
// the host short of cores or slow on loopback round trips.
func machineCheckSummary(checks []MachineCheck) (line string, warnings []string) {
	if len(checks) == 0 {
		return "", nil
	}
	oneLo, oneHi := span(checks, func(c MachineCheck) float64 { return c.OneCoreMB })
	coresLo, coresHi := span(checks, func(c MachineCheck) float64 { return c.Cores })
	rttLo, rttHi := span(checks, func(c MachineCheck) float64 { return c.LoopbackUS })
	memLo, memHi := span(checks, func(c MachineCheck) float64 { return c.MemCopyMB })
	pfLo, pfHi := span(checks, func(c MachineCheck) float64 { return c.PageFaultUS })
	fcLo, fcHi := span(checks, func(c MachineCheck) float64 { return c.FileCreate })
	var short, slow, slowFiles []string
	for _, c := range checks {
		if c.Cores < fewCoresFraction*float64(c.CPUs) {
			short = append(short, fmt.Sprintf("%s (%.2f)", c.Before, c.Cores))
		}
		if c.LoopbackUS > slowLoopbackUS {
			slow = append(slow, fmt.Sprintf("%s (%.1f µs)", c.Before, c.LoopbackUS))
		}
		if c.FileCreate > slowFileCreateUS {
			slowFiles = append(slowFiles, fmt.Sprintf("%s (%.0f µs)", c.Before, c.FileCreate))
		}
	}
	line = fmt.Sprintf("machine check before each scenario: SHA-256 on one core %.0f–%.0f MB/s, on %d goroutines %.2f–%.2f cores' worth; "+
		"loopback round trip %.1f–%.1f µs; memory copy %.0f–%.0f MB/s; page fault %.1f–%.1f µs",
		oneLo, oneHi, checks[0].CPUs, coresLo, coresHi, rttLo, rttHi, memLo, memHi, pfLo, pfHi)
	if fcHi > 0 {
		line += fmt.Sprintf("; file create %.0f–%.0f µs", fcLo, fcHi)
	}
	if len(short) > 0 {
		warnings = append(warnings, fmt.Sprintf("the host gave a CPU-bound loop less than %.0f %% of its %d CPUs before %s: "+
			"it was busy with other work, so those scenarios' absolute targets (p99s, 200 orders/s) say more about the host than about iacc",
			fewCoresFraction*100, checks[0].CPUs, strings.Join(short, ", ")))
	}
	if len(slow) > 0 {
		warnings = append(warnings, fmt.Sprintf("a loopback round trip took over %d µs before %s: "+
			"the host's system calls and wake-ups were slow (its reference figure is about 5 µs), so every request, statement and Redis call cost more CPU; "+
			"those scenarios' absolute targets (p99s, 200 orders/s) say more about the host than about iacc",
			slowLoopbackUS, strings.Join(slow, ", ")))
	}
	if len(slowFiles) > 0 {
		warnings = append(warnings, fmt.Sprintf("creating a small file in the blob directory took over %d µs before %s: "+
			"every rendered PDF pays that in system CPU (about 30 µs otherwise). On ext4 without a journal each new file "+
			"passes over the inodes deleted near it in the last 1–6 minutes (a previous run's cleanup, a build, a test run): "+
			"start a run 6 minutes after such deletions, or give the blobs a quieter directory with -env IACC_BLOB_DIR=…",
			slowFileCreateUS, strings.Join(slowFiles, ", ")))
	}
	return line, warnings
}

// slowFileCreateUS: a check whose file creation took longer than this makes
// the run end with a WARNING. On the VM of README.md's figures this check
// read 15–90 µs in most runs, and 0.2–1 ms within minutes of many deletions
// in the same block group (see fileCreateCost).
const slowFileCreateUS = 200

// span is the lowest and the highest of one reading over the checks (at
// least one).
func span(checks []MachineCheck, reading func(MachineCheck) float64) (lo, hi float64) {
	lo, hi = reading(checks[0]), reading(checks[0])
	for _, c := range checks[1:] {
		lo, hi = min(lo, reading(c)), max(hi, reading(c))
	}
	return lo, hi
}
