package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/iacc/iacc/store"
)

// maxInsertBytes ends a multi-row INSERT once it has grown this large; a
// single row larger than this makes a statement of its own.
const maxInsertBytes = 1 << 20

// valueKind says how a column's values are written into the dump.
type valueKind int

const (
	kindString   valueKind = iota // quoted, backslash-escaped
	kindNumber                    // as the server prints it
	kindBinary                    // X'hex'
	kindBit                       // BIT(n): its unsigned value
	kindTemporal                  // DATE/DATETIME/TIMESTAMP: selected as CAST(… AS CHAR), quoted
)

func kindOf(dataType string) valueKind {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint",
		"decimal", "numeric", "float", "double", "real", "year":
		return kindNumber
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection", "geomcollection":
		return kindBinary
	case "bit":
		return kindBit
	case "date", "datetime", "timestamp":
		return kindTemporal
	}
	return kindString // char, varchar, text, enum, set, json, time, uuid, inet…
}

type column struct {
	name string
	kind valueKind
}

// tableInfo is one base table as the dumper and the verifier read it.
type tableInfo struct {
	name    string
	columns []column // stored columns, in order (generated ones are computed on restore)
	orderBy []string // primary key; else a unique key of NOT NULL columns; else every column
}

// readSchema lists the base tables of the connection's current database.
// Views, triggers, routines, events and sequences are not dumped: finding
// one is an error rather than a silently incomplete backup.
func readSchema(ctx context.Context, q store.Querier) ([]tableInfo, error) {
	var others []string
	rows, err := q.QueryContext(ctx, `
		SELECT CONCAT(LOWER(TABLE_TYPE), ' ', TABLE_NAME) FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'BASE TABLE'
		UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
		UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
		UNION ALL SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()`)
	if err != nil {
		return nil, fmt.Errorf("list schema objects: %w", err)
	}
	if others, err = scanStrings(rows); err != nil {
		return nil, fmt.Errorf("list schema objects: %w", err)
	}
	if len(others) > 0 {
		slices.Sort(others)
		return nil, fmt.Errorf("the database holds objects the backup does not dump (it dumps base tables only): %s", strings.Join(others, ", "))
	}

	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	names, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	tables := make([]tableInfo, len(names))
	byName := map[string]*tableInfo{}
	for i, n := range names {
		tables[i].name = n
		byName[n] = &tables[i]
	}

	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION`)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tbl, col, typ, extra string
		if err := rows.Scan(&tbl, &col, &typ, &extra); err != nil {
			return nil, fmt.Errorf("scan column: %w", err)
		}
		t := byName[tbl]
		if t == nil || isGenerated(extra) {
			continue
		}
		t.columns = append(t.columns, column{name: col, kind: kindOf(typ)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	rows.Close()

	// Keys: PRIMARY first, then the other unique keys by name.
	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, NULLABLE, SUB_PART IS NOT NULL
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
		ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	type key struct {
		cols   []string
		usable bool
	}
	keys := map[string][]*key{} // table → keys in order
	last := map[string]string{}
	for rows.Next() {
		var tbl, idx, col, nullable string
		var nonUnique int
		var prefix bool
		if err := rows.Scan(&tbl, &idx, &nonUnique, &col, &nullable, &prefix); err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		if last[tbl] != idx || len(keys[tbl]) == 0 {
			keys[tbl] = append(keys[tbl], &key{usable: nonUnique == 0})
			last[tbl] = idx
		}
		k := keys[tbl][len(keys[tbl])-1]
		k.cols = append(k.cols, col)
		if nullable != "" || prefix {
			k.usable = false
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	for i := range tables {
		t := &tables[i]
		if len(t.columns) == 0 {
			return nil, fmt.Errorf("table %s: no columns found", t.name)
		}
		for _, k := range keys[t.name] {
			if k.usable {
				t.orderBy = k.cols
				break
			}
		}
		if t.orderBy == nil {
			for _, c := range t.columns {
				t.orderBy = append(t.orderBy, c.name)
			}
		}
	}
	return tables, nil
}

// isGenerated reports whether information_schema.COLUMNS.EXTRA marks a
// generated column (MySQL: VIRTUAL/STORED GENERATED; MariaDB: the same, or
// PERSISTENT in older versions).
func isGenerated(extra string) bool {
	e := strings.ToUpper(extra)
	return strings.Contains(e, "VIRTUAL GENERATED") || strings.Contains(e, "STORED GENERATED") ||
		strings.Contains(e, "PERSISTENT") || e == "VIRTUAL"
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// selectSQL reads a table's stored columns in key order. Temporal columns
// are cast to text so that their exact value (all fraction digits) arrives
// whatever the driver's time parsing.
func (t tableInfo) selectSQL() string {
	var sb strings.Builder
	sb.WriteString("SELECT ")
	for i, c := range t.columns {
		if i > 0 {
			sb.WriteByte(',')
		}
		if c.kind == kindTemporal {
			sb.WriteString("CAST(" + store.QuoteIdent(c.name) + " AS CHAR)")
		} else {
			sb.WriteString(store.QuoteIdent(c.name))
		}
	}
	sb.WriteString(" FROM " + store.QuoteIdent(t.name) + " ORDER BY ")
	for i, c := range t.orderBy {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(store.QuoteIdent(c))
	}
	return sb.String()
}

// insertPrefix starts a multi-row INSERT of the table's stored columns.
func (t tableInfo) insertPrefix() []byte {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + store.QuoteIdent(t.name) + " (")
	for i, c := range t.columns {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(store.QuoteIdent(c.name))
	}
	sb.WriteString(") VALUES\n")
	return []byte(sb.String())
}

// scanTable calls fn with each row of t in key order. The values are valid
// only during the call; NULL is a nil slice.
func scanTable(ctx context.Context, q store.Querier, t tableInfo, fn func(vals []sql.RawBytes) error) error {
	rows, err := q.QueryContext(ctx, t.selectSQL())
	if err != nil {
		return fmt.Errorf("read table %s: %w", t.name, err)
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(t.columns))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read table %s: %w", t.name, err)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read table %s: %w", t.name, err)
	}
	return nil
}

// rowHasher computes a table's checksum: SHA-256 over the table and column
// names, then every row's values, each either 0x00 (NULL) or 0x01, its
// length (uvarint) and its bytes as the server sends them.
type rowHasher struct {
	h    hash.Hash
	buf  []byte
	rows int64
}

func newRowHasher(t tableInfo) *rowHasher {
	h := sha256.New()
	h.Write([]byte("iacc-backup-rows-v1\x00" + t.name + "\x00"))
	for _, c := range t.columns {
		h.Write([]byte(c.name + "\x00"))
	}
	return &rowHasher{h: h, buf: make([]byte, 0, 16)}
}

func (r *rowHasher) add(vals []sql.RawBytes) {
	for _, v := range vals {
		if v == nil {
			r.h.Write([]byte{0})
			continue
		}
		r.buf = append(r.buf[:0], 1)
		r.buf = binary.AppendUvarint(r.buf, uint64(len(v)))
		r.h.Write(r.buf)
		r.h.Write(v)
	}
	r.rows++
}

func (r *rowHasher) sum() TableSum {
	return TableSum{Rows: r.rows, Checksum: hex.EncodeToString(r.h.Sum(nil))}
}

// tableSums computes every table's row count and checksum (the verifier).
func tableSums(ctx context.Context, q store.Querier) (map[string]TableSum, error) {
	tables, err := readSchema(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make(map[string]TableSum, len(tables))
	for _, t := range tables {
		h := newRowHasher(t)
		if err := scanTable(ctx, q, t, func(vals []sql.RawBytes) error { h.add(vals); return nil }); err != nil {
			return nil, err
		}
		out[t.name] = h.sum()
	}
	return out, nil
}

// dumpHeader is what the dump says about itself in its first lines.
type dumpHeader struct {
	ID, Database, ServerVersion string
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// dump writes the SQL of every base table of q's current database to w and
// returns each table's row count and checksum. q must be one connection
// inside a consistent-snapshot transaction.
func dump(ctx context.Context, q store.Querier, w io.Writer, hdr dumpHeader) (map[string]TableSum, error) {
	tables, err := readSchema(ctx, q)
	if err != nil {
		return nil, err
	}
	put := func(s string) error { _, err := io.WriteString(w, s); return err }
	if err := put(fmt.Sprintf(`-- iacc backup %s of database %s (%s), format %d
-- Plain SQL: load it into an empty database with the mysql or mariadb client.
SET NAMES utf8mb4;
SET TIME_ZONE='+00:00';
SET SQL_MODE='NO_AUTO_VALUE_ON_ZERO';
SET FOREIGN_KEY_CHECKS=0;
SET UNIQUE_CHECKS=0;
`, hdr.ID, store.QuoteIdent(hdr.Database), oneLine(hdr.ServerVersion), FormatVersion)); err != nil {
		return nil, err
	}
	sums := make(map[string]TableSum, len(tables))
	var row []byte
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var name, create string
		if err := q.QueryRowContext(ctx, "SHOW CREATE TABLE "+store.QuoteIdent(t.name)).Scan(&name, &create); err != nil {
			return nil, fmt.Errorf("read definition of table %s: %w", t.name, err)
		}
		if err := put("\n-- Table " + store.QuoteIdent(t.name) + "\nDROP TABLE IF EXISTS " + store.QuoteIdent(t.name) + ";\n" + create + ";\n"); err != nil {
			return nil, err
		}
		prefix := t.insertPrefix()
		h := newRowHasher(t)
		stmt := 0 // bytes of the INSERT being written
		err := scanTable(ctx, q, t, func(vals []sql.RawBytes) error {
			h.add(vals)
			row = row[:0]
			if stmt == 0 {
				row = append(row, prefix...)
			} else {
				row = append(row, ",\n"...)
			}
			row = appendRow(row, t.columns, vals)
			if _, err := w.Write(row); err != nil {
				return err
			}
			stmt += len(row)
			if stmt >= maxInsertBytes {
				stmt = 0
				return put(";\n")
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if stmt > 0 {
			if err := put(";\n"); err != nil {
				return nil, err
			}
		}
		if cap(row) > 4*maxInsertBytes {
			row = nil // do not keep one huge row's buffer for the rest of the dump
		}
		sums[t.name] = h.sum()
	}
	if err := put("\nSET UNIQUE_CHECKS=1;\nSET FOREIGN_KEY_CHECKS=1;\n-- end of iacc backup " + hdr.ID + "\n"); err != nil {
		return nil, err
	}
	return sums, nil
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// appendRow appends one parenthesised row of values.
func appendRow(b []byte, cols []column, vals []sql.RawBytes) []byte {
	b = append(b, '(')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		if v == nil {
			b = append(b, "NULL"...)
			continue
		}
		switch cols[i].kind {
		case kindNumber:
			if isNumeric(v) {
				b = append(b, v...)
			} else {
				b = appendQuoted(b, v)
			}
		case kindBinary:
			b = append(b, "X'"...)
			b = hex.AppendEncode(b, v)
			b = append(b, '\'')
		case kindBit:
			var u uint64
			for _, c := range v {
				u = u<<8 | uint64(c)
			}
			b = strconv.AppendUint(b, u, 10)
		default:
			b = appendQuoted(b, v)
		}
	}
	return append(b, ')')
}

func isNumeric(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}

// appendQuoted appends v as a single-quoted string literal with the escapes
// of mysql_real_escape_string: NUL, newline, carriage return, backslash,
// quotes and Ctrl-Z. No raw line break ends up inside a literal.
func appendQuoted(b, v []byte) []byte {
	b = append(b, '\'')
	for len(v) > 0 {
		i := bytes.IndexAny(v, "\x00\n\r\\'\"\x1a")
		if i < 0 {
			b = append(b, v...)
			break
		}
		b = append(b, v[:i]...)
		switch v[i] {
		case 0:
			b = append(b, `\0`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\\':
			b = append(b, `\\`...)
		case '\'':
			b = append(b, `\'`...)
		case '"':
			b = append(b, `\"`...)
		case 0x1a:
			b = append(b, `\Z`...)
		}
		v = v[i+1:]
	}
	return append(b, '\'')
}
