package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// rateLimitPerMinute is the child's rate limit per token and per IP: the
// most iacc's configuration accepts, far above what a step can send.
const rateLimitPerMinute = "10000000"

// child is a running `iacc serve` process.
type child struct {
	name string // the subcommand: serve, api
	key  string // name and extra environment: what Server compares
	cmd  *exec.Cmd
	pid  int
	addr string // 127.0.0.1:port
	done chan struct{}
	err  error // the exit status, once done is closed
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// binary returns the iacc binary: cfg.Binary, or one built from ./cmd/iacc
// into the run's temp dir.
func (h *Harness) binary(ctx context.Context) (string, error) {
	if h.bin != "" {
		return h.bin, nil
	}
	if h.cfg.Binary != "" {
		p, err := filepath.Abs(h.cfg.Binary)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("iacc binary: %w", err)
		}
		h.bin = p
		return p, nil
	}
	out := filepath.Join(h.tmp, "iacc")
	h.logf("build %s (go build -o … ./cmd/iacc)", out)
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-o", out, "./cmd/iacc")
	cmd.Dir = h.cfg.Root
	cmd.SysProcAttr = childProcAttr() // no orphaned build if the harness dies
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build iacc: %w\n%s", err, b)
	}
	h.bin = out
	return out, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Server returns the running `iacc <sub>` child (sub is serve, api, …)
// with the extra environment env (KEY=VALUE), starting it and waiting for
// GET /ready 200 if needed. A child with another subcommand or environment
// is stopped first. cfg.ChildEnv (-env) overrides env.
func (h *Harness) Server(ctx context.Context, sub string, env ...string) (*child, error) {
	key := strings.Join(append([]string{sub}, env...), " ")
	if h.server != nil && !h.server.exited() && h.server.key == key {
		return h.server, nil
	}
	if h.server != nil && !h.server.exited() {
		h.StopServer()
	}
	if h.server != nil {
		h.server = nil
		return nil, fmt.Errorf("the iacc child exited on its own; see %s:\n%s", h.serverLog, tailFile(h.serverLog, 20))
	}
	bin, err := h.binary(ctx)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	extra := env
	env = make([]string, 0, len(os.Environ())+16)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IACC_") {
			env = append(env, kv)
		}
	}
	if h.jwtSecret == "" {
		h.jwtSecret = randomHex(32) // one per run: tokens survive a restart
		h.secretKeys = "bench:" + base64.StdEncoding.EncodeToString([]byte(randomHex(16)))
	}
	env = append(env,
		"IACC_MYSQL_DSN="+h.DSN(),
		"IACC_REDIS_URL="+h.RedisURL(),
		"IACC_HTTP_ADDR="+addr,
		"IACC_JWT_SECRET="+h.jwtSecret,
		"IACC_SECRET_KEYS="+h.secretKeys,
		"IACC_BLOB_DIR="+h.blobDir(),
		"IACC_LOG_LEVEL=warn",
		"IACC_SMTP_URL="+h.smtp.URL(),
		// One client IP and one token generate all the load: raise the rate
		// limits out of reach rather than switching them off, so that the
		// limiter's Redis round trips stay on the measured path.
		"IACC_RATE_LIMIT_PER_TOKEN="+rateLimitPerMinute,
		"IACC_RATE_LIMIT_PER_IP="+rateLimitPerMinute,
	)
	env = append(env, extra...)
	env = append(env, h.cfg.ChildEnv...) // the last value of a key wins
	h.serverLog = filepath.Join(h.tmp, "iacc.log")
	logf, err := os.OpenFile(h.serverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open child log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, sub)
	cmd.Dir = h.tmp // local mode writes ./var there, not in the repository
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start iacc %s: %w", sub, err)
	}
	c := &child{name: sub, key: key, cmd: cmd, pid: cmd.Process.Pid, addr: addr, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	h.server = c
	h.logf("started iacc %s (pid %d) on %s", key, c.pid, addr)
	if err := h.waitReady(ctx, c, 60*time.Second); err != nil {
		h.StopServer()
		return nil, err
	}
	return c, nil
}

func (h *Harness) waitReady(ctx context.Context, c *child, timeout time.Duration) error {
	hc := newHostClient(c.addr, 1)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if c.exited() {
			return fmt.Errorf("iacc exited before it was ready (%v):\n%s", c.err, tailFile(h.serverLog, 20))
		}
		code, body, err := hc.Get(nil, "http://"+c.addr+"/ready")
		if err == nil && code == 200 {
			return nil
		}
		last = err
		if err == nil {
			last = &statusError{Code: code, Body: string(body)}
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("iacc not ready after %s (GET /ready: %v):\n%s", timeout, last, tailFile(h.serverLog, 20))
}

// StopServer stops the child: SIGTERM, then SIGKILL after 20 s.
func (h *Harness) StopServer() {
	c := h.server
	if c == nil {
		return
	}
	h.server = nil
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	h.logf("stopped iacc %s (pid %d)", c.name, c.pid)
}

// childLogRow summarises the child's warnings and errors (it logs at warn).
func (h *Harness) childLogRow() Row {
	r := Row{Scenario: "server", Step: "child log (warn+)"}
	f, err := os.Open(h.serverLog)
	if err != nil {
		r.Value = "unreadable"
		r.Notes = err.Error()
		return r
	}
	defer f.Close()
	counts := map[string]int{}
	var first []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Err   string `json:"err"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Level == "" {
			line.Level, line.Msg = "TEXT", strings.TrimSpace(sc.Text())
		}
		counts[line.Level]++
		if len(first) < 3 {
			msg := line.Msg
			if line.Err != "" {
				msg += ": " + line.Err
			}
			if len(msg) > 120 {
				msg = msg[:120] + "…"
			}
			first = append(first, line.Level+" "+msg)
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	r.Value = fmt.Sprintf("%d lines", total)
	if total > 0 {
		kept := filepath.Join(filepath.Dir(h.cfg.outPath()), "iacc-child.log")
		where := "log: " + kept
		_ = os.MkdirAll(filepath.Dir(kept), 0o755)
		if b, err := os.ReadFile(h.serverLog); err != nil || os.WriteFile(kept, b, 0o644) != nil {
			where = "log not kept"
		}
		r.Notes = fmt.Sprintf("%v; first: %s; %s", counts, strings.Join(first, " | "), where)
	}
	return r
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return lastLines(b, n)
}

// lastLines returns the last n lines of out, for error messages.
func lastLines(out []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// goCommand is the go tool to run: $GO (as make passes it), else go.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// blobDir is the child's IACC_BLOB_DIR: a directory in the run's temp dir,
// unless -env sets another.
func (h *Harness) blobDir() string {
	dir := filepath.Join(h.tmp, "blobs")
	for _, kv := range h.cfg.ChildEnv {
		if v, ok := strings.CutPrefix(kv, "IACC_BLOB_DIR="); ok {
			dir = v // the last value wins, as in the child's environment
		}
	}
	return dir
}
