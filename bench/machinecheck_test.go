package bench

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMachineCheckMeasuresEachReading(t *testing.T) {
	c, err := machineCheck(context.Background(), "intake", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if c.OneCoreMB <= 0 || c.AllMB <= 0 || c.Cores <= 0 || c.CPUs < 1 || c.LoopbackUS <= 0 || c.MemCopyMB <= 0 || c.Before != "intake" {
		t.Errorf("check = %+v; want both rates, the cores' worth, the CPU count, the round trip, the copy rate and the scenario", c)
	}
	if runtime.GOOS == "linux" && c.PageFaultUS <= 0 {
		t.Errorf("check = %+v; want the cost of a page fault", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := machineCheck(ctx, "intake", time.Minute); err == nil {
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
