package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// RetryAfter (seconds) is sent as the Retry-After header, not in the body.
	RetryAfter int `json:"-"`
}

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

const problemBase = "https://iacc.dev/problems/"

func newProblem(status int, slug, detail string) *Problem {
	return &Problem{Type: problemBase + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

func errBadRequest(detail string) *Problem {
	return newProblem(fiber.StatusBadRequest, "bad-request", detail)
}

func errUnauthorized(detail string) *Problem {
	return newProblem(fiber.StatusUnauthorized, "unauthorized", detail)
}

func errForbidden() *Problem {
	return newProblem(fiber.StatusForbidden, "forbidden", "your role does not allow this action")
}

func errNotFound(what string) *Problem {
	return newProblem(fiber.StatusNotFound, "not-found", what+" not found")
}

func errConflict(detail string) *Problem {
	return newProblem(fiber.StatusConflict, "conflict", detail)
}

// errValidation is a 422 naming every invalid field.
func errValidation(fields []FieldError) *Problem {
	p := newProblem(fiber.StatusUnprocessableEntity, "validation", "the request has invalid fields")
	p.Errors = fields
	return p
}

func errUnavailable(detail string) *Problem {
	p := newProblem(fiber.StatusServiceUnavailable, "unavailable", detail)
	p.RetryAfter = 5
	return p
}

// handleError is Fiber's error handler: every error becomes problem+json. A
// 5xx body never carries the internal error; the log does.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var p *Problem
	var fe *fiber.Error
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe):
		p = fiberProblem(fe)
	case errors.Is(err, store.ErrNotFound):
		p = errNotFound("resource")
	case errors.Is(err, store.ErrOutOfRange):
		p = newProblem(fiber.StatusUnprocessableEntity, "out-of-range", "the amounts involved exceed what iacc can store (12 digits before the decimal point)")
	case errors.Is(err, store.ErrConflict):
		p = errConflict("the request conflicts with the current state")
	case errors.Is(err, context.DeadlineExceeded), store.IsUnavailable(err):
		p = errUnavailable("a backing service is unavailable; retry later")
	default:
		p = newProblem(fiber.StatusInternalServerError, "internal", "an internal error occurred; it has been logged")
	}
	if p.Status >= 500 {
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Method(), "route", routePath(c), "status", p.Status, "err", err)
	}
	p.Instance = string(append([]byte(nil), c.Request().URI().Path()...))
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
	}
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(p.Status).JSON(p, "application/problem+json")
}

func fiberProblem(fe *fiber.Error) *Problem {
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return newProblem(fe.Code, "too-large", "the request body is larger than the limit")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		// The headers did not fit the read buffer, so nothing was parsed and
		// no handler ran. In practice this is an oversized bearer token (a
		// real one is well under 1 KB): answer it as the invalid credential
		// it is, at once.
		return errUnauthorized("the request headers are too large; a bearer token is at most 4 KB")
	case fiber.StatusNotFound:
		return newProblem(fe.Code, "not-found", "no such route")
	case fiber.StatusMethodNotAllowed:
		return newProblem(fe.Code, "method-not-allowed", "method not allowed on this route")
	}
	if fe.Code >= 500 {
		return newProblem(fe.Code, "internal", "an internal error occurred; it has been logged")
	}
	return newProblem(fe.Code, "http-error", fe.Message)
}
