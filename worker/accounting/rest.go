package accounting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RESTConfig configures the REST connector.
type RESTConfig struct {
	// BaseURL is the partner's root (IACC_ACCOUNTING_URL), e.g.
	// https://ledger.example.com; requests go to BaseURL/v1/tenants/….
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>"
	// (IACC_ACCOUNTING_TOKEN). It is never logged nor put in errors.
	Token string
	// Timeout bounds one request, answer included (IACC_ACCOUNTING_TIMEOUT;
	// default 10 s).
	Timeout time.Duration
	// Transport overrides the HTTP transport (tests); nil uses a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// REST is the connector for the protocol of docs/accounting.md.
type REST struct {
	base    *url.URL
	token   string
	timeout time.Duration
	client  *http.Client
}

// DefaultTimeout bounds one request to the partner.
const DefaultTimeout = 10 * time.Second

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// NewREST checks the configuration and returns the connector.
func NewREST(cfg RESTConfig) (*REST, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("accounting URL must be an http(s) URL such as https://ledger.example.com, got %q", cfg.BaseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("accounting URL must not carry credentials, a query or a fragment (the token goes in IACC_ACCOUNTING_TOKEN)")
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("accounting token is empty (IACC_ACCOUNTING_TOKEN)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &REST{base: u, token: strings.TrimSpace(cfg.Token), timeout: cfg.Timeout,
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: noRedirects}}, nil
}

// noRedirects keeps the Authorization header from following a redirect
// elsewhere: a redirect is answered as is (and treated as a failure).
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// String names the connector without its token (for %v and %+v).
func (c REST) String() string { return "accounting REST connector for " + c.base.String() }

// GoString keeps the token out of %#v.
func (c REST) GoString() string { return c.String() }

// LogValue keeps the token out of structured logs.
func (c REST) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.base.String()), slog.Duration("timeout", c.timeout))
}

// url builds BaseURL/v1/tenants/{tenant}/{collection}[/{id}].
func (c *REST) url(tenantID int64, collection, id string) string {
	elems := []string{"v1", "tenants", strconv.FormatInt(tenantID, 10), collection}
	if id != "" {
		elems = append(elems, url.PathEscape(id))
	}
	return c.base.JoinPath(elems...).String()
}

// ValidExternalID reports whether a partner's document id is usable: 1 to
// 191 characters from A–Z a–z 0–9 - _ . ~ : and not "." or "..".
func ValidExternalID(id string) bool {
	if id == "" || len(id) > 191 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.~:", r)
		if !ok {
			return false
		}
	}
	return true
}

// Push implements Connector: POST to create, PUT to update.
func (c *REST) Push(ctx context.Context, req Request) (Response, error) {
	body, err := json.Marshal(req.Doc)
	if err != nil {
		return Response{}, &PartnerError{Kind: Rejected, Message: "encode document: " + err.Error(), Err: err}
	}
	method, target := http.MethodPost, c.url(req.TenantID, req.Doc.Collection(), "")
	if req.ExternalID != "" {
		method, target = http.MethodPut, c.url(req.TenantID, req.Doc.Collection(), req.ExternalID)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return Response{}, &PartnerError{Kind: Transient, Message: "build request: " + err.Error(), Err: err}
	}
	hreq.Header.Set("Authorization", "Bearer "+c.token)
	hreq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json, application/problem+json")
	hreq.Header.Set("User-Agent", "iacc-accounting/1")
	resp, err := c.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, &PartnerError{Kind: Transient, Message: "cancelled: " + ctx.Err().Error(), Err: ctx.Err()}
		}
		return Response{}, &PartnerError{Kind: Transient, Message: describeTransportError(method, err), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Response{}, &PartnerError{Kind: Transient, Status: resp.StatusCode, Message: "read answer: " + describeTransportError(method, err), Err: err}
	}
	return classify(resp, raw, req.ExternalID != "")
}

// describeTransportError says what failed without echoing the request
// (whose URL is fine to show; its headers, with the token, never appear in
// net/http errors).
func describeTransportError(method string, err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return method + " " + ue.URL + ": timed out"
		}
		return method + " " + ue.URL + ": " + ue.Err.Error()
	}
	return err.Error()
}

// docAnswer is the part of a 2xx answer iacc reads.
type docAnswer struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

// problem is an RFC 9457 problem document with the protocol's extensions.
type problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Detail     string `json:"detail"`
	ExistingID string `json:"existing_id"`
	Errors     []struct {
		Field   string `json:"field"`
		Pointer string `json:"pointer"`
		Message string `json:"message"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

func (p problem) message() string {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	var parts []string
	for _, e := range p.Errors {
		field := e.Field
		if field == "" {
			field = e.Pointer
		}
		text := e.Message
		if text == "" {
			text = e.Detail
		}
		if field != "" {
			text = field + ": " + text
		}
		parts = append(parts, text)
	}
	if len(parts) > 0 {
		if msg != "" {
			msg += " "
		}
		msg += "(" + strings.Join(parts, "; ") + ")"
	}
	return msg
}

// answerText is the partner's explanation: the problem's detail and field
// errors, or the start of the body.
func answerText(raw []byte) string {
	var p problem
	if json.Unmarshal(raw, &p) == nil {
		if m := p.message(); m != "" {
			return clipText(m, 500)
		}
	}
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "no explanation given"
	}
	return clipText(strings.Join(strings.Fields(s), " "), 300)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// Default waits when the partner asks for one without saying how long.
const (
	defaultRetryAfter = 5 * time.Second
	maxRetryAfter     = time.Hour
)

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. ok is false when the header is absent or unreadable.
func ParseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return min(time.Duration(secs)*time.Second, maxRetryAfter), true
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

func classify(resp *http.Response, raw []byte, update bool) (Response, error) {
	st := resp.StatusCode
	switch {
	case st >= 200 && st < 300:
		var a docAnswer
		if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
			// The partner applied the request (2xx) but its answer is
			// unreadable: retrying with the same key replays it.
			return Response{}, &PartnerError{Kind: Transient, Status: st, Message: "2xx answer without a document id: " + answerText(raw)}
		}
		if !ValidExternalID(a.ID) {
			return Response{}, &PartnerError{Kind: Rejected, Status: st, Message: fmt.Sprintf("the partner answered an unusable document id %q", clipText(a.ID, 60))}
		}
		return Response{ExternalID: a.ID, Status: st, Replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
	case st == http.StatusTooManyRequests:
		d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			d = defaultRetryAfter
		}
		return Response{}, &PartnerError{Kind: RateLimited, Status: st, RetryAfter: d, Message: answerText(raw)}
	case st == http.StatusConflict:
		var p problem
		_ = json.Unmarshal(raw, &p)
		if !update && ValidExternalID(p.ExistingID) {
			return Response{}, &PartnerError{Kind: Exists, Status: st, ExistingID: p.ExistingID, Message: answerText(raw)}
		}
		// Another request with the same key is still being processed.
		d, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return Response{}, &PartnerError{Kind: Transient, Status: st, RetryAfter: d, Message: answerText(raw)}
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		// A credentials problem is fixed by ops, not by editing the
		// document: retry with backoff rather than flag every document.
		return Response{}, &PartnerError{Kind: Transient, Status: st,
			Message: "the partner refused iacc's credentials (check IACC_ACCOUNTING_TOKEN): " + answerText(raw)}
	case st == http.StatusNotFound && !update:
		return Response{}, &PartnerError{Kind: Transient, Status: st,
			Message: "the partner has no such endpoint (check IACC_ACCOUNTING_URL): " + answerText(raw)}
	case st == http.StatusNotFound:
		return Response{}, &PartnerError{Kind: Rejected, Status: st, Message: "the partner no longer has this document: " + answerText(raw)}
	case st == http.StatusRequestTimeout || st == http.StatusTooEarly:
		return Response{}, &PartnerError{Kind: Transient, Status: st, Message: answerText(raw)}
	case st >= 400 && st < 500:
		return Response{}, &PartnerError{Kind: Rejected, Status: st, Message: answerText(raw)}
	default: // 5xx, and 1xx/3xx, which the protocol does not use
		d, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return Response{}, &PartnerError{Kind: Transient, Status: st, RetryAfter: d, Message: answerText(raw)}
	}
}
