package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iacc/iacc/worker/email/smtptest"
	"github.com/iacc/iacc/worker/webhook"
)

// fakeTB lets the test partners (smtptest, accountingtest), which take a
// testing.TB, run in a program: Cleanup functions run when the scenario
// ends, Fatal panics (recovered by the scenario runner).
type fakeTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	cleanups []func()
}

type fatalError struct{ msg string }

func (f fatalError) Error() string { return f.msg }

func (t *fakeTB) Helper()      {}
func (t *fakeTB) Name() string { return t.name }
func (t *fakeTB) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}
func (t *fakeTB) Fatalf(format string, args ...any) { panic(fatalError{fmt.Sprintf(format, args...)}) }
func (t *fakeTB) Fatal(args ...any)                 { panic(fatalError{fmt.Sprint(args...)}) }
func (t *fakeTB) Errorf(format string, args ...any) {}
func (t *fakeTB) Logf(format string, args ...any)   {}
func (t *fakeTB) Log(args ...any)                   {}

func (t *fakeTB) runCleanups() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Mode is how a webhook receiver behaves.
type Mode int

const (
	// ModeOK answers 200 at once (after the configured Delay, if any).
	ModeOK Mode = iota
	// ModeSlow answers 200 after SlowDelay.
	ModeSlow
	// ModeRefuse closes the listener and every connection: connection refused.
	ModeRefuse
	// ModeFail answers 500.
	ModeFail
)

func (m Mode) String() string {
	return [...]string{"ok", "slow", "refusing", "500"}[m]
}

// Receipt is one request a receiver got.
type Receipt struct {
	ID       string // webhook-id
	Type     string
	At       time.Time
	Created  time.Time // the event's creation (the body's timestamp)
	Status   int       // answer given (0: none yet)
	SigOK    bool
	Inflight int
}

// Receiver is a webhook receiver in the suite's process, with a scriptable
// behaviour. It dedupes by webhook-id: an id is processed once (its first
// 2xx answer); later 2xx receipts of the same id are counted as resent.
type Receiver struct {
	Name string
	Addr string

	mu        sync.Mutex
	mode      Mode
	delay     time.Duration // ModeOK: base processing time
	slowDelay time.Duration // ModeSlow
	secret    string
	srv       *http.Server
	receipts  []Receipt
	processed map[string]time.Time // id → first processed (2xx) at
	created   map[string]time.Time // id → the event's creation
	okCount   map[string]int
	inflight  int
	maxInfl   int
	badSig    int
}

// NewReceiver starts a receiver on a free port.
func NewReceiver(name string) (*Receiver, error) {
	r := &Receiver{Name: name, processed: map[string]time.Time{}, created: map[string]time.Time{}, okCount: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.Addr = ln.Addr().String()
	r.serve(ln)
	return r, nil
}

func (r *Receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	r.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// URL is the endpoint URL to register.
func (r *Receiver) URL() string { return "http://" + r.Addr + "/hooks/" + r.Name }

// SetSecret sets the signing secret the receiver checks signatures with.
func (r *Receiver) SetSecret(s string) {
	r.mu.Lock()
	r.secret = s
	r.mu.Unlock()
}

// SetDelay sets the processing time in ModeOK.
func (r *Receiver) SetDelay(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}

// SetMode switches the behaviour. ModeRefuse closes the server (and its
// keep-alive connections); leaving it listens on the same address again.
func (r *Receiver) SetMode(m Mode, slow time.Duration) error {
	r.mu.Lock()
	old, srv := r.mode, r.srv
	r.mode, r.slowDelay = m, slow
	r.mu.Unlock()
	switch {
	case m == ModeRefuse && old != ModeRefuse:
		return srv.Close()
	case m != ModeRefuse && old == ModeRefuse:
		var ln net.Listener
		var err error
		for i := 0; i < 50; i++ { // the port may linger a moment
			if ln, err = net.Listen("tcp", r.Addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("receiver %s: listen again on %s: %w", r.Name, r.Addr, err)
		}
		r.mu.Lock()
		r.serve(ln)
		r.mu.Unlock()
	}
	return nil
}

// Close stops the receiver.
func (r *Receiver) Close() {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	_ = srv.Close()
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	id := req.Header.Get(webhook.HeaderID)
	var msg struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
	}
	_ = json.Unmarshal(body, &msg)
	created, _ := time.Parse(time.RFC3339Nano, msg.Timestamp)

	r.mu.Lock()
	mode, delay, slow, secret := r.mode, r.delay, r.slowDelay, r.secret
	sigOK := checkSignature(secret, id, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body)
	if !sigOK {
		r.badSig++
	}
	r.inflight++
	r.maxInfl = max(r.maxInfl, r.inflight)
	idx := len(r.receipts)
	r.receipts = append(r.receipts, Receipt{ID: id, Type: msg.Type, At: at, Created: created, SigOK: sigOK, Inflight: r.inflight})
	r.mu.Unlock()

	status := http.StatusOK
	switch mode {
	case ModeSlow:
		time.Sleep(slow) // a slow receiver keeps working whether or not the caller waits
	case ModeFail:
		status = http.StatusInternalServerError
	default:
		if delay > 0 {
			time.Sleep(delay)
		}
	}
	if !sigOK {
		status = http.StatusUnauthorized
	}
	r.mu.Lock()
	r.inflight--
	r.receipts[idx].Status = status
	if status == http.StatusOK && id != "" {
		if _, seen := r.processed[id]; !seen {
			r.processed[id] = time.Now()
			r.created[id] = created
		}
		r.okCount[id]++
	}
	r.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// checkSignature verifies a Standard Webhooks signature against secret.
func checkSignature(secret, id, ts, header string, body []byte) bool {
	if secret == "" {
		return true // not registered yet
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	want, err := webhook.Sign([]string{secret}, id, time.Unix(sec, 0), body)
	if err != nil {
		return false
	}
	for _, s := range strings.Fields(header) {
		if s == want {
			return true
		}
	}
	return false
}

// ReceiverStats is a snapshot of a receiver's records.
type ReceiverStats struct {
	Raw        int                  // every request
	OK         int                  // 2xx answers
	Processed  map[string]time.Time // distinct ids processed → when
	Created    map[string]time.Time // id → event creation
	OKCount    map[string]int
	MaxInfl    int
	BadSig     int
	Inflight   int
	FirstSeen  map[string]time.Time // id → first receipt (any answer)
	Statuses   map[int]int
	ReceiptsBy map[string]int // id → requests
}

// Stats snapshots the receiver.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ReceiverStats{Raw: len(r.receipts), Processed: map[string]time.Time{}, Created: map[string]time.Time{}, OKCount: map[string]int{},
		MaxInfl: r.maxInfl, BadSig: r.badSig, Inflight: r.inflight, FirstSeen: map[string]time.Time{}, Statuses: map[int]int{}, ReceiptsBy: map[string]int{}}
	for k, v := range r.processed {
		s.Processed[k] = v
	}
	for k, v := range r.created {
		s.Created[k] = v
	}
	for k, v := range r.okCount {
		s.OKCount[k] = v
		s.OK += v
	}
	for _, rc := range r.receipts {
		if _, ok := s.FirstSeen[rc.ID]; !ok {
			s.FirstSeen[rc.ID] = rc.At
		}
		s.Statuses[rc.Status]++
		s.ReceiptsBy[rc.ID]++
	}
	return s
}

// Inflight is the number of requests being answered now.
func (r *Receiver) Inflight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight
}

// sinkStats counts the SMTP sink's messages by Message-ID.
type sinkStats struct {
	Raw      int
	ByID     map[string]int
	NoID     int
	Rcpts    map[string]int // recipient → messages
	Subjects map[string]string
}

func smtpStats(s *smtptest.Server) sinkStats {
	st := sinkStats{ByID: map[string]int{}, Rcpts: map[string]int{}, Subjects: map[string]string{}}
	for _, m := range s.Messages() {
		st.Raw++
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			st.NoID++
			continue
		}
		id := strings.Trim(strings.TrimSpace(msg.Header.Get("Message-Id")), "<>")
		if id == "" {
			st.NoID++
			continue
		}
		st.ByID[id]++
		st.Subjects[id] = msg.Header.Get("Subject")
		for _, to := range m.To {
			st.Rcpts[strings.ToLower(to)]++
		}
	}
	return st
}
