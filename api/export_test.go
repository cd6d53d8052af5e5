package api

// This file exports internals to the tests of package api_test; it is
// compiled into the test binary only.

// RouteInfo is one row of the route table as the tests see it.
type RouteInfo struct {
	Method   string
	Path     string
	Public   bool     // no token needed
	Optional bool     // public, and a token is used when present
	Mount    bool     // a mounted application serving the subtree under Path
	Roles    []string // the roles a token must have (none for public routes)
	Summary  string
	Request  bool     // the route takes a JSON body
	Query    []string // documented query parameters
}

// RouteTable returns the server's route table, in table order.
func (s *Server) RouteTable() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.routeTable() {
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path, Public: r.Access.public, Optional: r.Access.optional, Mount: r.Access.mount,
			Roles: append([]string(nil), r.Access.roles...), Summary: r.Doc.Summary, Request: r.Doc.Request != nil,
			Query: append([]string(nil), r.Doc.Query...)})
	}
	return out
}

// Allows reports whether the route's access lets a caller with a valid
// token of role through; role "" is an anonymous caller.
func (r RouteInfo) Allows(role string) bool {
	if r.Public {
		return true
	}
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

// HashRefresh is how refresh tokens are stored (to plant sessions without
// paying for a bcrypt login).
var HashRefresh = hashRefresh
