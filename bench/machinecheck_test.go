package bench

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMachineCheckMeasuresEachReading(t *testing.T) {
	c, err := machineCheck(context.Background(), "intake", 50*time.Millisecond, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.OneCoreMB <= 0 || c.AllMB <= 0 || c.Cores <= 0 || c.CPUs < 1 || c.LoopbackUS <= 0 || c.MemCopyMB <= 0 || c.Before != "intake" {
		t.Errorf("check = %+v; want both rates, the cores' worth, the CPU count, the round trip, the copy rate and the scenario", c)
	}
	if runtime.GOOS == "linux" && c.PageFaultUS <= 0 {
		t.Errorf("check = %+v; want the cost of a page fault", c)
	}
	if c.FileCreate <= 0 {
		t.Errorf("check = %+v; want the cost of creating a file in the blob dir", c)
	}
	if c, err := machineCheck(context.Background(), "pdf", 10*time.Millisecond, ""); err != nil || c.FileCreate != 0 {
		t.Errorf("check without a blob dir = %+v, %v; want no file creation figure", c, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := machineCheck(ctx, "intake", time.Minute, ""); err == nil {
		t.Error("a cancelled check returned no error")
	}
}

func TestMachineCheckSummaryWarnsWhenTheHostIsShortOfCores(t *testing.T) {
	checks := []MachineCheck{
		{Before: "intake", OneCoreMB: 500, Cores: 1.95, CPUs: 2, LoopbackUS: 5.5, MemCopyMB: 9000, PageFaultUS: 2.5},
		{Before: "reads", OneCoreMB: 320, Cores: 1.02, CPUs: 2, LoopbackUS: 9.75, MemCopyMB: 4000, PageFaultUS: 30.25},
		{Before: "pdf", OneCoreMB: 480, Cores: 1.60, CPUs: 2, LoopbackUS: 5.25, MemCopyMB: 12000, PageFaultUS: 3},
	}
	line, warnings := machineCheckSummary(checks)
	for _, want := range []string{"one core 320–500 MB/s", "on 2 goroutines 1.02–1.95 cores' worth", "round trip 5.2–9.8 µs", "memory copy 4000–12000 MB/s", "page fault 2.5–30.2 µs"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "before reads (1.02)") || strings.Contains(warnings[0], "intake") || strings.Contains(warnings[0], "pdf") {
		t.Errorf("warnings %q: want one, for reads alone (1.02 < 0.75 × 2; 1.60 is not)", warnings)
	}
	if _, warnings := machineCheckSummary(checks[:1]); len(warnings) != 0 {
		t.Errorf("warnings %q for a host that gave 1.95 of 2 cores and 5.5 µs round trips", warnings)
	}
	if line, warnings := machineCheckSummary(nil); line != "" || len(warnings) != 0 {
		t.Errorf("no checks gave %q, %q", line, warnings)
	}
}

func TestMachineCheckSummaryWarnsWhenLoopbackIsSlow(t *testing.T) {
	checks := []MachineCheck{
		{Before: "intake", OneCoreMB: 1450, Cores: 1.95, CPUs: 2, LoopbackUS: 18.5, MemCopyMB: 13000, PageFaultUS: 2.5},
		{Before: "reads", OneCoreMB: 1460, Cores: 1.98, CPUs: 2, LoopbackUS: 9.9, MemCopyMB: 13000, PageFaultUS: 2.5},
		{Before: "e2e", OneCoreMB: 1440, Cores: 1.90, CPUs: 2, LoopbackUS: 24.25, MemCopyMB: 13000, PageFaultUS: 2.5},
	}
	_, warnings := machineCheckSummary(checks)
	if len(warnings) != 1 {
		t.Fatalf("warnings %q: want one, on the round trips (the cores are all there)", warnings)
	}
	w := warnings[0]
	if !strings.Contains(w, "before intake (18.5 µs), e2e (24.2 µs)") || strings.Contains(w, "reads") {
		t.Errorf("warning %q: want intake and e2e (over %d µs), not reads (9.9 µs)", w, slowLoopbackUS)
	}
}

// The file check leaves nothing in the blob dir, makes a missing one, and
// the summary warns on the scenarios before which creating a file was slow.
func TestMachineCheckFileCreation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs", "new")
	took, err := fileCreateCost(dir, 8)
	if err != nil || took <= 0 {
		t.Fatalf("fileCreateCost = %v, %v", took, err)
	}
	// The check's files stay: deleting them would slow down the next file
	// creations in their block group (see fileCreateCost).
	subs, err := filepath.Glob(filepath.Join(dir, ".machine-check-*", "*"))
	if err != nil || len(subs) != 8 {
		t.Errorf("blob dir after the check holds %v (%v); want the check's 8 files", subs, err)
	}
	if _, err := fileCreateCost(filepath.Join(dir, "x\x00"), 1); err == nil {
		t.Error("a check in a directory that cannot be made returned no error")
	}
	checks := []MachineCheck{
		{Before: "intake", OneCoreMB: 1450, Cores: 1.95, CPUs: 2, LoopbackUS: 5, FileCreate: 21},
		{Before: "e2e", OneCoreMB: 1440, Cores: 1.90, CPUs: 2, LoopbackUS: 5, FileCreate: 930.4},
	}
	line, warnings := machineCheckSummary(checks)
	if !strings.Contains(line, "file create 21–930 µs") {
		t.Errorf("line %q lacks the file creation range", line)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "before e2e (930 µs)") || strings.Contains(warnings[0], "intake") {
		t.Errorf("warnings %q: want one, for e2e alone", warnings)
	}
	if line, _ := machineCheckSummary(checks[:1:1]); !strings.Contains(line, "file create 21–21") {
		t.Errorf("line %q lacks the file creation figure", line)
	}
	checks[0].FileCreate = 0
	if line, _ := machineCheckSummary(checks[:1]); strings.Contains(line, "file create") {
		t.Errorf("line %q: no check measured file creation, so no figure", line)
	}
}
