package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// reaper remembers every child process group the suite started, so that
// every exit path (a scenario's end, a panic, SIGINT to the suite) can kill
// them.
type reaper struct {
	mu   sync.Mutex
	pids map[int]string
}

func newReaper() *reaper { return &reaper{pids: map[int]string{}} }

func (r *reaper) add(pid int, name string) {
	r.mu.Lock()
	r.pids[pid] = name
	r.mu.Unlock()
}

func (r *reaper) remove(pid int) {
	r.mu.Lock()
	delete(r.pids, pid)
	r.mu.Unlock()
}

// killAll sends SIGKILL to every remembered process group.
func (r *reaper) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid := range r.pids {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// Proc is a child process in its own process group.
type Proc struct {
	Name    string
	Role    string // serve | api | worker | scheduler | redis | cli
	HTTP    string // API address (api, serve)
	Health  string // health address (worker, scheduler)
	LogPath string
	Started time.Time

	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	reaper *reaper
	logf   *os.File
}

// startProc starts bin with args and env in dir, its output in logPath.
func startProc(r *reaper, name, role, dir, logPath string, env []string, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Role: role, LogPath: logPath, Started: time.Now(), cmd: cmd, done: make(chan struct{}), reaper: r, logf: f}
	r.add(cmd.Process.Pid, name)
	go func() {
		p.err = cmd.Wait()
		r.remove(cmd.Process.Pid)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill9 kills the process group with SIGKILL and waits for the exit.
func (p *Proc) Kill9() {
	if !p.Alive() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Term sends SIGTERM to the process (not waiting).
func (p *Proc) Term() { _ = syscall.Kill(p.Pid(), syscall.SIGTERM) }

// Wait waits for the exit up to d; it returns the exit code (-1: killed
// by a signal) or an error on timeout.
func (p *Proc) Wait(d time.Duration) (int, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		return 0, fmt.Errorf("%s still running after %s", p.Name, d)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	if p.err != nil {
		return -1, p.err
	}
	return 0, nil
}

// Stop ends the process: SIGTERM, then SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) {
	if !p.Alive() {
		return
	}
	p.Term()
	if _, err := p.Wait(grace); err != nil {
		p.Kill9()
	}
}

// waitHTTP polls url until it answers 200, the process exits or the
// deadline passes.
func waitHTTP(ctx context.Context, p *Proc, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: time.Second}
	for {
		if p != nil && !p.Alive() {
			return fmt.Errorf("%s exited before it was ready (see %s)", p.Name, p.LogPath)
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s (last: %v)", nameOf(p), url, within, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func nameOf(p *Proc) string {
	if p == nil {
		return "service"
	}
	return p.Name
}

// sleepCtx waits d or until ctx ends (pacing of polls, never
// synchronisation on its own).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// freePort returns a port free at the moment of the call.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// pollUntil calls cond every interval until it returns true, returns an
// error, or the deadline passes.
func pollUntil(ctx context.Context, within, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return err
		}
	}
}
