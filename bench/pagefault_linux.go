package bench

import (
	"fmt"
	"syscall"
	"time"
)

// freshPageCost maps size bytes of anonymous memory the process never had,
// writes one byte per 4 KiB page and unmaps it: the time per page is what a
// page fault costs. On a VM whose freed memory goes back to the host (free
// page reporting, ballooning), that cost moves with the host's memory
// pressure, and every heap growth of Go, MariaDB or Redis pays it.
func freshPageCost(size int) (time.Duration, error) {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, fmt.Errorf("map %d bytes: %w", size, err)
	}
	start := time.Now()
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	took := time.Since(start)
	if err := syscall.Munmap(mem); err != nil {
		return 0, fmt.Errorf("unmap: %w", err)
	}
	return took / time.Duration(size/4096), nil
}
