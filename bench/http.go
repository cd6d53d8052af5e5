package bench

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// newHostClient is the load generator's HTTP client: fasthttp, keep-alive,
// at most conns connections (one per closed-loop client). It costs the
// shared CPU less per request than net/http.
func newHostClient(addr string, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                     addr,
		MaxConns:                 conns,
		MaxConnWaitTimeout:       30 * time.Second,
		MaxIdleConnDuration:      time.Minute,
		ReadTimeout:              30 * time.Second,
		WriteTimeout:             30 * time.Second,
		NoDefaultUserAgentHeader: true,
	}
}

// httpCall is one worker's reusable request.
type httpCall struct {
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func newCall(hc *fasthttp.HostClient, method, uri, token string, body []byte) *httpCall {
	c := &httpCall{hc: hc, req: &fasthttp.Request{}, resp: &fasthttp.Response{}}
	c.req.Header.SetMethod(method)
	c.req.SetRequestURI(uri)
	if token != "" {
		c.req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		c.req.Header.SetContentType("application/json")
		c.req.SetBody(body)
	}
	return c
}

// do sends the request; a non-2xx answer is a *statusError.
func (c *httpCall) do() error {
	if err := c.hc.Do(c.req, c.resp); err != nil {
		return err
	}
	if code := c.resp.StatusCode(); code < 200 || code > 299 {
		body := c.resp.Body()
		if len(body) > 200 {
			body = body[:200]
		}
		return &statusError{Code: code, Body: string(body)}
	}
	return nil
}

// login gets an access token with POST /auth/login.
func login(addr string, f fixture) (string, error) {
	body, err := json.Marshal(map[string]string{"email": f.Email, "password": f.Password})
	if err != nil {
		return "", err
	}
	c := newCall(newHostClient(addr, 1), "POST", "http://"+addr+"/auth/login", "", body)
	if err := c.do(); err != nil {
		return "", fmt.Errorf("POST /auth/login: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(c.resp.Body(), &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("POST /auth/login: no access_token in %q", c.resp.Body())
	}
	return tok.AccessToken, nil
}
