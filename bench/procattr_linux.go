package bench

import "syscall"

// childProcAttr puts the child in its own process group (a terminal's
// Ctrl-C reaches only the harness, which then stops the child in order) and
// has the kernel kill it if the harness dies without cleaning up.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
