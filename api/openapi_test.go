package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/iacc/iacc/api"
)

// openAPIPath turns /api/x/:id into /api/x/{id}.
func openAPIPathOf(p string) string {
	return regexp.MustCompile(`:([A-Za-z0-9_]+)`).ReplaceAllString(p, "{$1}")
}

// registeredRoutes are the routes the Fiber app serves, as "METHOD /path"
// with OpenAPI path templates: its routes without Fiber's automatic HEAD
// routes and without middleware, and the route table's mounted
// applications that are mounted (Use) on their path.
func registeredRoutes(t *testing.T, srv *api.Server) map[string]bool {
	t.Helper()
	gets := map[string]bool{}
	nonUse := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		nonUse[r.Method+" "+r.Path] = true
		if r.Method == http.MethodGet {
			gets[r.Path] = true
		}
	}
	out := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead && gets[r.Path] {
			continue
		}
		out[r.Method+" "+openAPIPathOf(r.Path)] = true
	}
	uses := map[string]bool{}
	for _, r := range srv.App().GetRoutes() {
		if !nonUse[r.Method+" "+r.Path] {
			uses[r.Path] = true
		}
	}
	for _, r := range srv.RouteTable() {
		if r.Mount && uses[r.Path] {
			out[r.Method+" "+r.Path] = true
		}
	}
	return out
}

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Info       map[string]any                        `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type openAPIOperation struct {
	Summary     string          `json:"summary"`
	OperationID string          `json:"operationId"`
	Responses   map[string]any  `json:"responses"`
	Security    json.RawMessage `json:"security"`
	Roles       []string        `json:"x-roles"`
	Parameters  []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]any `json:"content"`
	} `json:"requestBody"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// The OpenAPI document is valid JSON of version 3.1.0, describes exactly the
// routes the app serves, gives every operation a summary, responses and the
// access of its route, and every schema it references exists.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "GET", "/openapi.json", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d %s", res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if !json.Valid(res.Body) {
		t.Fatalf("the document is not JSON: %.200s", res.Body)
	}
	var d openAPIDoc
	if err := json.Unmarshal(res.Body, &d); err != nil {
		t.Fatalf("decode document: %v", err)
	}
	if d.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", d.OpenAPI)
	}
	if d.Info["title"] == nil || d.Info["version"] == nil {
		t.Errorf("info lacks title or version: %v", d.Info)
	}

	table := map[string]api.RouteInfo{}
	for _, r := range b.srv.RouteTable() {
		table[r.Method+" "+openAPIPathOf(r.Path)] = r
	}
	registered := registeredRoutes(t, b.srv)
	documented := map[string]bool{}
	opIDs := map[string]string{}
	for p, item := range d.Paths {
		for m, raw := range item {
			if !slices.Contains(httpMethods, m) {
				continue // parameters, summary, ... of the path item
			}
			key := strings.ToUpper(m) + " " + p
			documented[key] = true
			if !registered[key] {
				t.Errorf("%s is documented but not served", key)
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s: operation: %v", key, err)
				continue
			}
			if strings.TrimSpace(op.Summary) == "" {
				t.Errorf("%s has no summary", key)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s has no responses", key)
			}
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", key)
			} else if prev, dup := opIDs[op.OperationID]; dup {
				t.Errorf("operationId %q of %s is also %s's", op.OperationID, key, prev)
			}
			opIDs[op.OperationID] = key
			// Every path template variable is a required path parameter.
			for _, v := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
				if !slices.ContainsFunc(op.Parameters, func(x struct {
					Name     string `json:"name"`
					In       string `json:"in"`
					Required bool   `json:"required"`
				}) bool {
					return x.Name == v[1] && x.In == "path" && x.Required
				}) {
					t.Errorf("%s: path variable {%s} is not a required path parameter", key, v[1])
				}
			}
			r, ok := table[key]
			if !ok {
				continue
			}
			// The access of the route, as the table states it.
			switch {
			case r.Public && !r.Optional:
				if string(op.Security) != "[]" {
					t.Errorf("%s is public; security = %s, want []", key, op.Security)
				}
			case r.Optional:
				if !strings.Contains(string(op.Security), "{}") || !strings.Contains(string(op.Security), "bearer") {
					t.Errorf("%s takes an optional token; security = %s, want [{}, {bearer}]", key, op.Security)
				}
			default:
				if !slices.Equal(op.Roles, r.Roles) {
					t.Errorf("%s: x-roles = %v, want %v (the route table)", key, op.Roles, r.Roles)
				}
				if len(op.Security) != 0 {
					t.Errorf("%s: security %s; a token route inherits the document's bearer security", key, op.Security)
				}
			}
			if r.Request != (op.RequestBody != nil) {
				t.Errorf("%s: requestBody documented %t, the route takes a body %t", key, op.RequestBody != nil, r.Request)
			}
		}
	}
	for key := range registered {
		if !documented[key] {
			t.Errorf("%s is served but not in the document's paths", key)
		}
	}
	if _, ok := d.Components.SecuritySchemes["bearer"]; !ok {
		t.Errorf("no bearer security scheme")
	}

	// Every $ref resolves, and every component has a name OpenAPI allows.
	var whole any
	if err := json.Unmarshal(res.Body, &whole); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	collectRefs(whole, refs)
	if len(refs) == 0 {
		t.Error("the document references no schemas")
	}
	for ref := range refs {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			t.Errorf("$ref %q does not point into components/schemas", ref)
			continue
		}
		if _, ok := d.Components.Schemas[name]; !ok {
			t.Errorf("$ref %q: no such schema in components", ref)
		}
	}
	componentName := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	for name, raw := range d.Components.Schemas {
		if !componentName.MatchString(name) {
			t.Errorf("component schema %q: OpenAPI requires component names to match ^[a-zA-Z0-9._-]+$ (referenced as %q); body %s",
				name, "#/components/schemas/"+name, raw)
		}
	}
}

func collectRefs(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				out[s] = true
			}
			collectRefs(e, out)
		}
	case []any:
		for _, e := range x {
			collectRefs(e, out)
		}
	}
}

// GET /docs is an HTML page that parses (every element closed in order) and
// lists every route with its method.
func TestDocsPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "GET", "/docs", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /docs = %d %s", res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	rows, err := parseDocsRows(res.Body)
	if err != nil {
		t.Fatalf("the page does not parse: %v", err)
	}
	for key := range registeredRoutes(t, b.srv) {
		if !rows[key] {
			t.Errorf("the docs page has no row for %s", key)
		}
	}
	for key := range rows {
		if !registeredRoutes(t, b.srv)[key] {
			t.Errorf("the docs page lists %s, which is not served", key)
		}
	}
}

var (
	htmlTag = regexp.MustCompile(`(?s)<!--.*?-->|<![dD][oO][cC][tT][yY][pP][eE][^>]*>|<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>`)
	// HTML's void elements, which have no end tag.
	voidElements = []string{"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)

// parseDocsRows checks that an HTML page is well-formed (every element but
// the void ones closed, in order; no stray '<') and returns its table rows
// as "METHOD path": the text of a row's first two cells.
func parseDocsRows(page []byte) (map[string]bool, error) {
	src := string(page)
	var stack []string
	rows := map[string]bool{}
	var cells []string
	var text strings.Builder
	pos := 0
	for pos < len(src) {
		loc := htmlTag.FindStringSubmatchIndex(src[pos:])
		if loc == nil {
			text.WriteString(src[pos:])
			break
		}
		between := src[pos : pos+loc[0]]
		if strings.Contains(between, "<") {
			return nil, fmt.Errorf("stray '<' in %q", between)
		}
		text.WriteString(between)
		base := pos
		m := func(i int) string {
			if loc[2*i] < 0 {
				return ""
			}
			return src[base+loc[2*i] : base+loc[2*i+1]]
		}
		pos += loc[1]
		name := strings.ToLower(m(2))
		switch {
		case name == "": // comment or doctype
		case m(1) == "/":
			if len(stack) == 0 || stack[len(stack)-1] != name {
				return nil, fmt.Errorf("</%s> closes nothing open (open: %s)", name, strings.Join(stack, " > "))
			}
			stack = stack[:len(stack)-1]
			switch name {
			case "td":
				cells = append(cells, strings.TrimSpace(html.UnescapeString(text.String())))
			case "tr":
				if len(cells) >= 2 {
					rows[cells[0]+" "+cells[1]] = true
				}
			}
		case slices.Contains(voidElements, name) || strings.HasSuffix(m(3), "/"):
		default:
			stack = append(stack, name)
			switch name {
			case "tr":
				cells = nil
			case "td":
				text.Reset()
			case "style", "script": // raw text up to the end tag
				end := strings.Index(strings.ToLower(src[pos:]), "</"+name)
				if end < 0 {
					return nil, fmt.Errorf("<%s> never closed", name)
				}
				pos += end
			}
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed elements: %s", strings.Join(stack, " > "))
	}
	if len(rows) == 0 {
		return nil, errors.New("no table rows")
	}
	return rows, nil
}

// The well-formedness check of TestDocsPage rejects broken pages.
func TestDocsPageCheckerRejectsBrokenHTML(t *testing.T) {
	t.Parallel()
	row := `<table><tr><td>GET</td><td><code>/x</code></td></tr></table>`
	if rows, err := parseDocsRows([]byte(`<!doctype html><html><head><meta charset="utf-8"></head><body>` + row + `</body></html>`)); err != nil || !rows["GET /x"] {
		t.Fatalf("a good page: rows %v, err %v", rows, err)
	}
	for _, page := range []string{
		`<html><body>` + row + `</body>`,
		`<html><body><div>` + row + `</body></html>`,
		`<html><body><div><span>` + row + `</div></span></body></html>`,
		`<html><body>` + row + ` a < b </body></html>`,
		`<html><body>` + row + `</p></body></html>`,
	} {
		if _, err := parseDocsRows([]byte(page)); err == nil {
			t.Errorf("broken page accepted: %s", page)
		}
	}
}
