package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// decodeJSON decodes the request body strictly into dst: the content type
// must be JSON, the body one JSON value, unknown fields are rejected. Errors
// are problems naming the offending field where there is one.
func decodeJSON(c *fiber.Ctx, dst any) error {
	ct := c.Get(fiber.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return newProblem(fiber.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
	}
	// The raw body: Fiber's c.Body() would inflate a compressed body past
	// the size limit (a decompression bomb).
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return newProblem(fiber.StatusUnsupportedMediaType, "unsupported-media-type", "compressed request bodies are not accepted")
	}
	return decodeStrict(c.Request().Body(), dst)
}

func decodeStrict(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errBadRequest("the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBadRequest("the request body must hold a single JSON value")
	}
	return nil
}

func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errBadRequest(fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("malformed JSON: the body ends too early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return errValidation([]FieldError{{Field: field, Message: "must be " + jsonKind(typ.Type.String())}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return errValidation([]FieldError{{Field: name, Message: "unknown field"}})
	}
	var fe *fieldDecodeError
	if errors.As(err, &fe) {
		return errValidation([]FieldError{{Field: fe.field, Message: fe.msg}})
	}
	return errBadRequest("malformed JSON: " + err.Error())
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// fieldDecodeError is returned by custom UnmarshalJSON methods.
type fieldDecodeError struct{ field, msg string }

func (e *fieldDecodeError) Error() string { return e.field + ": " + e.msg }

// validator collects field errors.
type validator struct{ errs []FieldError }

func (v *validator) add(field, msg string) {
	v.errs = append(v.errs, FieldError{Field: field, Message: msg})
}

func (v *validator) check(ok bool, field, msg string) {
	if !ok {
		v.add(field, msg)
	}
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return errValidation(v.errs)
}

// pageParams reads page and per_page (≤ 100).
func pageParams(c *fiber.Ctx) (page, perPage int, err error) {
	var v validator
	page, perPage = 1, 25
	if s := c.Query("page"); s != "" {
		n, e := strconv.Atoi(s)
		v.check(e == nil && n >= 1 && n <= 1_000_000, "page", "must be a whole number from 1")
		page = n
	}
	if s := c.Query("per_page"); s != "" {
		n, e := strconv.Atoi(s)
		v.check(e == nil && n >= 1 && n <= 100, "per_page", "must be a whole number from 1 to 100")
		perPage = n
	}
	return page, perPage, v.err()
}

// idParam reads a positive integer path parameter; anything else is 404.
func idParam(c *fiber.Ctx, name, what string) (int64, error) {
	id, err := strconv.ParseInt(c.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound(what)
	}
	return id, nil
}

// queryID reads an optional positive id from the query string.
func queryID(c *fiber.Ctx, v *validator, name string) int64 {
	raw := c.Query(name)
	if raw == "" {
		return 0
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	v.check(err == nil && id > 0, name, "must be a positive id")
	return id
}

// parseBasic decodes HTTP Basic credentials.
func parseBasic(cred string) (user, pass string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}
