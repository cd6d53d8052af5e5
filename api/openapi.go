package api

import (
	"encoding/json"
	"html/template"
	"reflect"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// doc is what the OpenAPI document says of a route. Request and Response
// are values of the body types; their JSON schemas are derived from them, so
// the document cannot drift from the code.
type doc struct {
	Summary     string
	Tag         string
	Request     any
	Response    any
	Status      int      // success status (200 when 0)
	ContentType string   // success content type other than JSON
	Query       []string // documented query parameters
}

// openAPIPath turns /api/x/:id into /api/x/{id}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// buildOpenAPI derives the OpenAPI 3.1 document from the route table.
func (s *Server) buildOpenAPI() map[string]any {
	schemas := map[string]any{}
	sg := schemaGen{defs: schemas}
	paths := map[string]map[string]any{}
	problem := map[string]any{"description": "Problem details (RFC 9457)",
		"content": map[string]any{"application/problem+json": map[string]any{"schema": sg.schema(reflect.TypeOf(Problem{}))}}}
	for _, r := range s.routeTable() {
		op := map[string]any{"summary": r.Doc.Summary, "operationId": strings.ToLower(r.Method) + strings.NewReplacer("/", "_", ":", "", "-", "_").Replace(r.Path)}
		if r.Doc.Tag != "" {
			op["tags"] = []string{r.Doc.Tag}
		}
		var params []any
		for _, seg := range strings.Split(r.Path, "/") {
			if strings.HasPrefix(seg, ":") {
				params = append(params, map[string]any{"name": seg[1:], "in": "path", "required": true, "schema": map[string]any{"type": "integer", "minimum": 1}})
			}
		}
		for _, q := range r.Doc.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if r.Method == "POST" && !r.Access.public {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "required": false,
				"description": "a retry with the same key and body returns the first response (24 h)", "schema": map[string]any{"type": "string", "maxLength": 255}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.Doc.Request != nil {
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": sg.schema(reflect.TypeOf(r.Doc.Request))}}}
		}
		status := r.Doc.Status
		if status == 0 {
			status = 200
		}
		ok := map[string]any{"description": statusText(status)}
		switch {
		case r.Doc.ContentType != "":
			ok["content"] = map[string]any{r.Doc.ContentType: map[string]any{"schema": map[string]any{"type": "string"}}}
		case r.Doc.Response != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": sg.schema(reflect.TypeOf(r.Doc.Response))}}
		}
		responses := map[string]any{itoa(int64(status)): ok, "default": problem}
		if r.Doc.ContentType == "application/pdf" {
			responses["202"] = map[string]any{"description": "still being rendered; retry after the Retry-After header"}
		}
		op["responses"] = responses
		if r.Access.public {
			if !r.Access.optional {
				op["security"] = []any{}
			} else {
				op["security"] = []any{map[string]any{}, map[string]any{"bearer": []string{}}}
			}
		} else {
			op["x-roles"] = r.Access.roles
		}
		p := openAPIPath(r.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "iacc API", "version": "1",
			"description": "Purchase-to-pay back office. Errors are application/problem+json; money is a decimal string such as \"125.50\" (a JSON number is accepted on input)."},
		"paths":      paths,
		"security":   []any{map[string]any{"bearer": []string{}}},
		"components": map[string]any{"schemas": schemas, "securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
	}
}

func statusText(code int) string {
	switch code {
	case 201:
		return "Created"
	case 204:
		return "No Content"
	}
	return "OK"
}

// schemaGen derives JSON schemas from Go types, naming structs in components.
type schemaGen struct{ defs map[string]any }

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func (g schemaGen) schema(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "a decimal number, as a string or a JSON number", "type": []string{"string", "number"}}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" { // anonymous struct: inline
			props := map[string]any{}
			g.fields(t, props)
			return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		}
		name := schemaName(t)
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, done := g.defs[name]; done {
			return ref
		}
		g.defs[name] = map[string]any{} // placeholder against recursion
		props := map[string]any{}
		g.fields(t, props)
		g.defs[name] = map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		return ref
	}
	return map[string]any{}
}

func (g schemaGen) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			g.fields(f.Type, props)
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
	}
}

func schemaName(t reflect.Type) string {
	n := t.Name()
	if i := strings.Index(n, "["); i >= 0 { // generic: listResponse[pkg.T] → T_list
		inner := n[i+1 : len(n)-1]
		inner = inner[strings.LastIndex(inner, ".")+1:]
		n = n[:i] + "_" + inner
	}
	return n
}

func (s *Server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(s.openAPIDoc())
}

func (s *Server) openAPIDoc() []byte {
	s.specOnce.Do(func() {
		s.spec, _ = json.MarshalIndent(s.buildOpenAPI(), "", "  ")
	})
	return s.spec
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iacc API</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:0 .25rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
.m{font-weight:bold;font-family:monospace}</style></head><body>
<h1>iacc API</h1>
<p>{{.Description}}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Authenticate with <code>POST /auth/login</code> and send
<code>Authorization: Bearer &lt;access_token&gt;</code>. Send <code>Idempotency-Key</code> on creates to retry safely.</p>
{{range .Tags}}<h2 id="{{.Name}}">{{.Name}}</h2>
<table><tr><th>method</th><th>path</th><th>what</th><th>who</th></tr>
{{range .Ops}}<tr><td class="m">{{.Method}}</td><td><code>{{.Path}}</code></td><td>{{.Summary}}</td><td>{{.Who}}</td></tr>
{{end}}</table>{{end}}
</body></html>`))

type docsOp struct{ Method, Path, Summary, Who string }
type docsTag struct {
	Name string
	Ops  []docsOp
}

// docsPage renders the route table as an HTML reference (no scripts, no
// third-party assets: it works offline and under the strict CSP).
func (s *Server) docsPage(c *fiber.Ctx) error {
	byTag := map[string][]docsOp{}
	var order []string
	for _, r := range s.routeTable() {
		who := "public"
		if !r.Access.public {
			who = strings.Join(r.Access.roles, ", ")
		} else if r.Access.optional {
			who = "public, or any token"
		}
		if _, ok := byTag[r.Doc.Tag]; !ok {
			order = append(order, r.Doc.Tag)
		}
		byTag[r.Doc.Tag] = append(byTag[r.Doc.Tag], docsOp{r.Method, openAPIPath(r.Path), r.Doc.Summary, who})
	}
	data := struct {
		Description string
		Tags        []docsTag
	}{Description: "Purchase-to-pay back office: vendors, products, purchase orders, invoices, payments. Errors are application/problem+json; money is a decimal string."}
	for _, t := range order {
		data.Tags = append(data.Tags, docsTag{t, byTag[t]})
	}
	var sb strings.Builder
	if err := docsTemplate.Execute(&sb, data); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	return c.SendString(sb.String())
}
