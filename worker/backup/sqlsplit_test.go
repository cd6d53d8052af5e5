package backup

import (
	"database/sql"
	"io"
	"slices"
	"strings"
	"testing"
)

func splitAll(t testing.TB, script string) ([]string, error) {
	t.Helper()
	sr := newStatementReader(strings.NewReader(script))
	var out []string
	for {
		st, err := sr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(st))
	}
}

func TestStatementReader(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in   string
		want []string
		err  string
	}{
		"plain":              {in: "SET A=1;\nSET B=2;\n", want: []string{"SET A=1", "\nSET B=2"}},
		"semicolon in data":  {in: `INSERT INTO t VALUES ('a;b'),("c;d");SELECT 1;`, want: []string{`INSERT INTO t VALUES ('a;b'),("c;d")`, "SELECT 1"}},
		"escaped quotes":     {in: `SELECT 'it\'s; \\', 'x'';y';SELECT 2;`, want: []string{`SELECT 'it\'s; \\', 'x'';y'`, "SELECT 2"}},
		"backtick ident":     {in: "CREATE TABLE `a;b``c` (x INT);SELECT 3", want: []string{"CREATE TABLE `a;b``c` (x INT)", "SELECT 3"}},
		"backslash in ident": {in: "SELECT `a\\`;SELECT 4;", want: []string{"SELECT `a\\`", "SELECT 4"}},
		"comments only skipped": {in: "-- header; with semicolon\n# another; one\n/* block; */\n;SET X=1;",
			want: []string{"SET X=1"}},
		"comment before statement kept": {in: "-- Table t\nDROP TABLE t;", want: []string{"-- Table t\nDROP TABLE t"}},
		"executable comment":            {in: "/*!40101 SET NAMES utf8mb4 */;", want: []string{"/*!40101 SET NAMES utf8mb4 */"}},
		"double dash without space":     {in: "SELECT 1--1;", want: []string{"SELECT 1--1"}},
		"last without semicolon":        {in: "SELECT 1;SELECT 2", want: []string{"SELECT 1", "SELECT 2"}},
		"line breaks in literal":        {in: "SELECT 'a\nb;\nc';", want: []string{"SELECT 'a\nb;\nc'"}},
		"unterminated quote":            {in: "SELECT 'abc;", err: "ends inside a quoted string"},
		"unterminated comment":          {in: "SELECT 1 /* abc;", err: "ends inside a /* comment"},
		"delimiter":                     {in: "DELIMITER //\nCREATE TRIGGER x//", err: "DELIMITER is not supported"},
		"empty":                         {in: "  \n\n", want: nil},
	} {
		got, err := splitAll(t, tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, tc.want)
		}
	}
}

func TestStatementReaderLimit(t *testing.T) {
	t.Parallel()
	sr := newStatementReader(strings.NewReader("SELECT '" + strings.Repeat("x", 2000) + "';"))
	sr.max = 1000
	if _, err := sr.Next(); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized statement: %v", err)
	}
}

// Any value written by the dumper's quoting stays one literal for the
// splitter: the statement around it splits exactly where it should.
func FuzzQuotedValueSplitsOnce(f *testing.F) {
	for _, s := range []string{"", "a;b", "it's", `\`, `\'`, "x\ny", "\x00\x1a", "-- c", "/* c */", "#", "`", `"`, "😀"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		row := appendRow(nil, []column{{kind: kindString}, {kind: kindBinary}, {kind: kindNumber}}, []sql.RawBytes{v, v, v})
		first := "INSERT INTO t VALUES " + string(row)
		got, err := splitAll(t, first+";\nSELECT 1;")
		if err != nil || len(got) != 2 || got[0] != first || got[1] != "\nSELECT 1" {
			t.Fatalf("value %q: statements %q, %v", v, got, err)
		}
		if strings.ContainsAny(string(row), "\n\r") {
			t.Fatalf("value %q: raw line break in %q", v, row)
		}
	})
}

// The splitter never panics and never returns more than it read.
func FuzzStatementReader(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "-- x\n;", "/*!1 x */;", "'a\\';b';", "`a;`;", "# x\nSELECT 2", "DELIMITER ;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _ := splitAll(t, s)
		total := 0
		for _, st := range got {
			total += len(st)
		}
		if total > len(s) {
			t.Fatalf("statements longer than the input: %q → %q", s, got)
		}
	})
}
