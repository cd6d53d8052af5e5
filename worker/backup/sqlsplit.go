package backup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxStatementBytes bounds one statement of a dump being restored (the
// server's max_allowed_packet is at most 1 GiB; iacc's INSERTs are ~1 MB).
const maxStatementBytes = 256 << 20

// statementReader splits a SQL script into statements the way the mysql
// client does for a script without DELIMITER commands: on ';' outside
// quotes ('…', "…", `…`) and comments (-- …, # …, /* … */). Comments stay
// in the statement text (MySQL's /*! … */ comments are executable); a piece
// holding only comments and blanks is skipped.
type statementReader struct {
	r    *bufio.Reader
	buf  []byte
	max  int
	line int // current line, for error messages
}

func newStatementReader(r io.Reader) *statementReader {
	return &statementReader{r: bufio.NewReaderSize(r, 256<<10), max: maxStatementBytes, line: 1}
}

const (
	stNormal = iota
	stQuote  // inside '…', "…" or `…`
	stLineComment
	stBlockComment
)

// Next returns the next statement without its ';', or io.EOF after the last.
// The slice is valid until the next call.
func (s *statementReader) Next() ([]byte, error) {
	for {
		stmt, err := s.next()
		if err != nil {
			return nil, err
		}
		if stmt != nil {
			return stmt, nil
		}
	}
}

// next reads up to the next ';' outside quotes and comments; it returns nil
// (and no error) for a piece without content.
func (s *statementReader) next() ([]byte, error) {
	s.buf = s.buf[:0]
	state := stNormal
	var quote byte
	content := false
	startLine := s.line
	for {
		c, err := s.r.ReadByte()
		if err == io.EOF {
			switch {
			case state == stQuote:
				return nil, fmt.Errorf("line %d: the input ends inside a quoted string started in the statement at line %d (truncated dump?)", s.line, startLine)
			case state == stBlockComment:
				return nil, fmt.Errorf("line %d: the input ends inside a /* comment (truncated dump?)", s.line)
			case content:
				return s.buf, nil // a last statement without ';', as the mysql client runs it
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if c == '\n' {
			s.line++
		}
		if len(s.buf) >= s.max {
			return nil, fmt.Errorf("line %d: statement started at line %d is larger than %d MiB", s.line, startLine, s.max>>20)
		}
		switch state {
		case stNormal:
			switch c {
			case ';':
				if !content {
					s.buf = s.buf[:0]
					startLine = s.line
					continue
				}
				return s.buf, nil
			case '\'', '"', '`':
				state, quote, content = stQuote, c, true
			case '#':
				state = stLineComment
			case '-':
				if p, _ := s.r.Peek(2); len(p) == 2 && p[0] == '-' && (p[1] == ' ' || p[1] == '\t' || p[1] == '\n' || p[1] == '\r') {
					state = stLineComment
				} else {
					content = true
				}
			case '/':
				if p, _ := s.r.Peek(1); len(p) == 1 && p[0] == '*' {
					state = stBlockComment
					if p, _ := s.r.Peek(2); len(p) == 2 && (p[1] == '!' || p[1] == 'M') {
						content = true // executable comment
					}
				} else {
					content = true
				}
			case ' ', '\t', '\n', '\r':
			default:
				if !content && (c == 'd' || c == 'D') {
					if p, _ := s.r.Peek(9); len(p) == 9 && bytes.EqualFold(append([]byte{c}, p...), []byte("delimiter ")) {
						return nil, fmt.Errorf("line %d: DELIMITER is not supported (dumps with triggers or routines are not iacc backups)", s.line)
					}
				}
				content = true
			}
		case stQuote:
			if c == '\\' && quote != '`' {
				s.buf = append(s.buf, c)
				n, err := s.r.ReadByte()
				if err != nil {
					if errors.Is(err, io.EOF) {
						return nil, fmt.Errorf("line %d: the input ends inside a quoted string (truncated dump?)", s.line)
					}
					return nil, err
				}
				if n == '\n' {
					s.line++
				}
				c = n
			} else if c == quote {
				state = stNormal
			}
		case stLineComment:
			if c == '\n' {
				state = stNormal
			}
		case stBlockComment:
			if c == '/' && len(s.buf) > 0 && s.buf[len(s.buf)-1] == '*' && !bytes.HasSuffix(s.buf, []byte("/*")) {
				state = stNormal
			}
		}
		s.buf = append(s.buf, c)
	}
}
