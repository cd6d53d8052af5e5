package pdftext

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotPDF is returned by Extract for input without the "%PDF-" header.
var ErrNotPDF = errors.New("pdftext: not a PDF (missing %PDF- header)")

// maxInflated bounds the total number of bytes Extract inflates from
// FlateDecode streams, so a hostile or corrupt input cannot exhaust memory.
// A variable only so tests can lower it.
var maxInflated = 64 << 20

// Extract returns the text shown by the Tj, TJ, ' and " operators of every
// content stream in pdf, one text run per line (each followed by "\n"), in
// file order. Empty runs are omitted; line breaks inside a run become spaces.
//
// Strings shown in a font that has a /ToUnicode CMap (the UTF-8 fonts fpdf
// embeds as Identity-H CID fonts, for one) are decoded with it: the font is
// the last one selected with Tf (saved and restored by q and Q), looked up by
// its resource name in any /Font resource dictionary of the file. Other
// strings are read as WinAnsiEncoding, or UTF-16BE after a byte-order mark.
//
// It returns ErrNotPDF if pdf does not start with "%PDF-", and an error if a
// FlateDecode stream cannot be inflated. Streams with other filters, images,
// font programs, cross-reference and object streams are skipped.
func Extract(pdf []byte) (string, error) {
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		return "", ErrNotPDF
	}
	objs := scanObjects(pdf)
	budget := maxInflated
	cmaps := map[int]*cmap{}
	var contents [][]byte
	for pos, n := 0, 0; ; n++ {
		s, ok := nextStream(pdf, pos)
		if !ok {
			break
		}
		pos = s.next
		if skipStream(s.dict) || objs.notText[s.obj] {
			continue
		}
		data := s.data
		switch filters := streamFilters(s.dict); {
		case len(filters) == 0:
		case len(filters) == 1 && (filters[0] == "FlateDecode" || filters[0] == "Fl"):
			var err error
			data, err = inflate(data, &budget)
			if err != nil {
				return "", fmt.Errorf("pdftext: stream %d at offset %d: %w", n, s.offset, err)
			}
		default:
			continue // a filter we do not decode: not text we produce
		}
		switch {
		case objs.toUnicodeObj[s.obj]:
			if _, dup := cmaps[s.obj]; !dup {
				cmaps[s.obj] = parseCMap(data)
			}
		case bytes.Contains(data, []byte("begincmap")):
			// A CMap no font refers to: not page content either.
		default:
			contents = append(contents, data)
		}
	}
	fonts := map[string]*cmap{}
	for name, obj := range objs.fontRes {
		if cm := cmaps[objs.toUnicode[obj]]; cm != nil {
			fonts[name] = cm
		}
	}
	var out strings.Builder
	for _, data := range contents {
		showText(data, fonts, &out)
	}
	return out.String(), nil
}

type stream struct {
	obj    int    // object number, -1 if there is no "N G obj" header
	dict   []byte // bytes between the object header and the "stream" keyword
	data   []byte // raw (still encoded) stream data
	offset int    // offset of data in the file
	next   int    // where to continue scanning
}

var (
	kwStream    = []byte("stream")
	kwEndstream = []byte("endstream")
	kwObj       = []byte("obj")
)

// nextStream finds the first "stream" keyword at or after from that starts a
// stream body (it is followed by an end-of-line and is not "endstream").
func nextStream(b []byte, from int) (stream, bool) {
	for i := from; i < len(b); {
		k := bytes.Index(b[i:], kwStream)
		if k < 0 {
			return stream{}, false
		}
		k += i
		i = k + len(kwStream)
		if k >= 3 && string(b[k-3:k]) == "end" {
			continue
		}
		start := i
		switch {
		case start+1 < len(b) && b[start] == '\r' && b[start+1] == '\n':
			start += 2
		case start < len(b) && (b[start] == '\n' || b[start] == '\r'):
			start++
		default:
			continue // "stream" inside something else
		}
		dict := b[from:k]
		obj := -1
		if j := bytes.LastIndex(dict, kwObj); j >= 0 {
			if num, _, ok := objHeader(b, from+j); ok {
				obj = num
			}
			dict = dict[j+len(kwObj):]
		}
		s := stream{obj: obj, dict: dict, offset: start}

		// Trust a direct /Length if "endstream" follows it.
		if n, ok := directLength(dict); ok && n <= len(b)-start {
			end := start + n
			rest := bytes.TrimLeft(b[end:], "\r\n \t\f\x00")
			if bytes.HasPrefix(rest, kwEndstream) {
				s.data = b[start:end]
				s.next = len(b) - len(rest) + len(kwEndstream)
				return s, true
			}
		}
		// Otherwise the data runs up to the next "endstream" (or the end of a
		// truncated file), less the end-of-line before it.
		e := bytes.Index(b[start:], kwEndstream)
		if e < 0 {
			s.data = b[start:]
			s.next = len(b)
			return s, true
		}
		data := b[start : start+e]
		switch {
		case bytes.HasSuffix(data, []byte("\r\n")):
			data = data[:len(data)-2]
		case bytes.HasSuffix(data, []byte("\n")), bytes.HasSuffix(data, []byte("\r")):
			data = data[:len(data)-1]
		}
		s.data = data
		s.next = start + e + len(kwEndstream)
		return s, true
	}
	return stream{}, false
}

// dictNames returns the names (without the slash) in a dictionary's source,
// in order. Good enough for the flat dictionaries of stream objects.
func dictNames(dict []byte) []string {
	var names []string
	for i := 0; i < len(dict); i++ {
		if dict[i] != '/' {
			continue
		}
		j := i + 1
		for j < len(dict) && isRegular(dict[j]) {
			j++
		}
		names = append(names, string(dict[i+1:j]))
		i = j - 1
	}
	return names
}

// skipStream reports whether a stream's dictionary says it is not a content
// stream: images, font programs, XRef/object streams, metadata.
func skipStream(dict []byte) bool {
	names := dictNames(dict)
	for i, n := range names {
		switch n {
		case "Length1", "Length2", "Length3":
			return true
		case "Type", "Subtype":
			if i+1 < len(names) {
				switch names[i+1] {
				case "Image", "XRef", "ObjStm", "Metadata", "EmbeddedFile",
					"Type1C", "CIDFontType0C", "OpenType":
					return true
				}
			}
		}
	}
	return false
}

// streamFilters returns the names given for /Filter (a name or an array).
func streamFilters(dict []byte) []string {
	i := indexKey(dict, "/Filter")
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(dict[i+len("/Filter"):], " \t\r\n\f\x00")
	if len(rest) == 0 {
		return nil
	}
	if rest[0] == '[' {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			end = len(rest)
		}
		return dictNames(rest[:end])
	}
	if rest[0] == '/' {
		names := dictNames(rest)
		return names[:1]
	}
	return []string{"?"} // indirect or malformed: do not guess
}

// indexKey finds key (e.g. "/Length") in dict as a whole name, not as the
// prefix of a longer one such as "/Length1".
func indexKey(dict []byte, key string) int {
	for off := 0; off < len(dict); {
		i := bytes.Index(dict[off:], []byte(key))
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(key)
		if end == len(dict) || !isRegular(dict[end]) {
			return i
		}
		off = end
	}
	return -1
}

// directLength parses "/Length 123" (not an indirect "/Length 12 0 R").
func directLength(dict []byte) (int, bool) {
	i := indexKey(dict, "/Length")
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(dict[i+len("/Length"):], " \t\r\n\f\x00")
	j := 0
	for j < len(rest) && j < 12 && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || (j < len(rest) && rest[j] >= '0' && rest[j] <= '9') {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return 0, false
	}
	// "12 0 R" is a reference, not a length.
	after := bytes.TrimLeft(rest[j:], " \t\r\n\f\x00")
	k := 0
	for k < len(after) && after[k] >= '0' && after[k] <= '9' {
		k++
	}
	if k > 0 {
		if tail := bytes.TrimLeft(after[k:], " \t\r\n\f\x00"); len(tail) > 0 && tail[0] == 'R' {
			return 0, false
		}
	}
	return n, true
}

func inflate(data []byte, budget *int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("flate: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(*budget)+1))
	if err != nil {
		return nil, fmt.Errorf("flate: %w", err)
	}
	if len(out) > *budget {
		return nil, fmt.Errorf("flate: inflated data exceeds the %d-byte limit", maxInflated)
	}
	*budget -= len(out)
	return out, nil
}

// Content stream interpretation.

type operand struct {
	str   []byte   // a string operand (kind == opString)
	parts [][]byte // the strings of an array operand; nil entries are word gaps
	kind  byte
}

const (
	opOther byte = iota
	opString
	opArray
	opName // str is the name without "/"
)

// maxSaved bounds the q/Q stack of fonts.
const maxSaved = 64

// maxOperands bounds the operand stack; real operators take at most a few.
const maxOperands = 64

// textState is the part of the graphics state Extract follows: the font.
type textState struct {
	fonts map[string]*cmap // font resource name -> ToUnicode CMap
	font  *cmap            // of the current font; nil: none, or no CMap
	saved []*cmap          // fonts saved by q
}

// decode appends the text of a shown string in the current font.
func (ts *textState) decode(out, s []byte) []byte {
	if ts.font != nil {
		return ts.font.decode(out, s)
	}
	return append(out, decodeText(s)...)
}

// showText interprets a content stream just enough to find text-showing
// operators and appends their strings, decoded in the font they are shown
// in, to out.
func showText(b []byte, fonts map[string]*cmap, out *strings.Builder) {
	ts := &textState{fonts: fonts}
	var ops []operand
	push := func(o operand) {
		if len(ops) == maxOperands {
			copy(ops, ops[1:])
			ops = ops[:len(ops)-1]
		}
		ops = append(ops, o)
	}
	// Array being built: depth > 0 while inside '[' ... ']'.
	depth := 0
	var arr [][]byte

	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case isSpace(c):
			i++
		case c == '%':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				i++
			}
		case c == '(':
			s, n := literalString(b[i:])
			i += n
			if depth > 0 {
				arr = append(arr, s)
			} else {
				push(operand{kind: opString, str: s})
			}
		case c == '<' && i+1 < len(b) && b[i+1] == '<':
			i += 2
			if depth == 0 {
				push(operand{})
			}
		case c == '>' && i+1 < len(b) && b[i+1] == '>':
			i += 2
			if depth == 0 {
				push(operand{})
			}
		case c == '<':
			s, n := hexString(b[i:])
			i += n
			if depth > 0 {
				arr = append(arr, s)
			} else {
				push(operand{kind: opString, str: s})
			}
		case c == '[':
			i++
			if depth == 0 {
				arr = nil
			}
			depth++
		case c == ']':
			i++
			if depth > 0 {
				depth--
				if depth == 0 {
					push(operand{kind: opArray, parts: arr})
					arr = nil
				}
			}
		case c == '/':
			j := i + 1
			for j < len(b) && isRegular(b[j]) {
				j++
			}
			if depth == 0 {
				push(operand{kind: opName, str: b[i+1 : j]})
			}
			i = j
		case isRegular(c):
			j := i
			for j < len(b) && isRegular(b[j]) {
				j++
			}
			tok := b[i:j]
			i = j
			if isNumber(tok) {
				if depth > 0 {
					// A large negative displacement in a TJ array is a word gap.
					if v, err := strconv.ParseFloat(string(tok), 64); err == nil && v <= -200 {
						arr = append(arr, nil)
					}
				} else {
					push(operand{})
				}
				continue
			}
			if depth > 0 {
				continue // keywords inside an array (true/false/null, garbage)
			}
			i = operator(string(tok), ops, b, i, ts, out)
			ops = ops[:0]
		default:
			i++ // stray ')', '>', '{', '}'
		}
	}
}

// operator applies a content-stream operator; it returns where to continue
// (inline images are skipped).
func operator(op string, ops []operand, b []byte, i int, ts *textState, out *strings.Builder) int {
	last := func(kind byte) (operand, bool) {
		if len(ops) == 0 || ops[len(ops)-1].kind != kind {
			return operand{}, false
		}
		return ops[len(ops)-1], true
	}
	switch op {
	case "Tf":
		if len(ops) >= 2 && ops[len(ops)-2].kind == opName {
			ts.font = ts.fonts[string(ops[len(ops)-2].str)]
		}
	case "q":
		if len(ts.saved) < maxSaved {
			ts.saved = append(ts.saved, ts.font)
		}
	case "Q":
		if n := len(ts.saved); n > 0 {
			ts.font = ts.saved[n-1]
			ts.saved = ts.saved[:n-1]
		}
	case "Tj", "'", "\"":
		if o, ok := last(opString); ok {
			emitDecoded(out, string(ts.decode(nil, o.str)))
		}
	case "TJ":
		if o, ok := last(opArray); ok {
			var run []byte
			for _, p := range o.parts {
				if p == nil {
					if len(run) > 0 && run[len(run)-1] != ' ' {
						run = append(run, ' ')
					}
					continue
				}
				run = ts.decode(run, p)
			}
			emitDecoded(out, string(run))
		}
	case "ID":
		// Inline image data: skip to "EI" delimited by white space.
		j := i + 1
		for j < len(b) {
			k := bytes.Index(b[j:], []byte("EI"))
			if k < 0 {
				return len(b)
			}
			k += j
			if isSpace(b[k-1]) && (k+2 == len(b) || isSpace(b[k+2]) || isDelim(b[k+2])) {
				return k + 2
			}
			j = k + 2
		}
		return len(b)
	}
	return i
}

func emitDecoded(out *strings.Builder, s string) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return
	}
	out.WriteString(s)
	out.WriteByte('\n')
}

// literalString decodes a "(...)" string starting at b[0] == '('. It returns
// the bytes and how many input bytes it consumed; an unterminated string runs
// to the end of b.
func literalString(b []byte) ([]byte, int) {
	var s []byte
	depth := 1
	i := 1
	for i < len(b) {
		c := b[i]
		i++
		switch c {
		case '(':
			depth++
			s = append(s, c)
		case ')':
			depth--
			if depth == 0 {
				return s, i
			}
			s = append(s, c)
		case '\r':
			// An unescaped end-of-line is read as "\n".
			if i < len(b) && b[i] == '\n' {
				i++
			}
			s = append(s, '\n')
		case '\\':
			if i >= len(b) {
				return s, i
			}
			e := b[i]
			i++
			switch e {
			case 'n':
				s = append(s, '\n')
			case 'r':
				s = append(s, '\r')
			case 't':
				s = append(s, '\t')
			case 'b':
				s = append(s, '\b')
			case 'f':
				s = append(s, '\f')
			case '\r': // line continuation
				if i < len(b) && b[i] == '\n' {
					i++
				}
			case '\n': // line continuation
			case '0', '1', '2', '3', '4', '5', '6', '7':
				v := int(e - '0')
				for k := 0; k < 2 && i < len(b) && b[i] >= '0' && b[i] <= '7'; k++ {
					v = v*8 + int(b[i]-'0')
					i++
				}
				s = append(s, byte(v)) // high-order overflow is ignored
			default: // \( \) \\ and unknown escapes: the character itself
				s = append(s, e)
			}
		default:
			s = append(s, c)
		}
	}
	return s, i
}

// hexString decodes a "<...>" string starting at b[0] == '<'. White space and
// other non-hex bytes are ignored; an odd final digit is padded with 0.
func hexString(b []byte) ([]byte, int) {
	var s []byte
	var hi byte
	half := false
	i := 1
	for i < len(b) {
		c := b[i]
		i++
		if c == '>' {
			break
		}
		v, ok := unhex(c)
		if !ok {
			continue
		}
		if half {
			s = append(s, hi<<4|v)
		} else {
			hi = v
		}
		half = !half
	}
	if half {
		s = append(s, hi<<4)
	}
	return s, i
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeText turns the bytes of a shown string into UTF-8: UTF-16BE when they
// start with a byte-order mark, WinAnsiEncoding (cp1252) otherwise.
func decodeText(s []byte) []byte {
	if len(s) >= 2 && s[0] == 0xfe && s[1] == 0xff {
		u := make([]uint16, 0, (len(s)-2)/2)
		for i := 2; i+1 < len(s); i += 2 {
			u = append(u, uint16(s[i])<<8|uint16(s[i+1]))
		}
		return []byte(string(utf16.Decode(u)))
	}
	ascii := true
	for _, c := range s {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for _, c := range s {
		out = utf8.AppendRune(out, cp1252(c))
	}
	return out
}

// cp1252High maps bytes 0x80-0x9F; 0xA0-0xFF are the same as Latin-1.
var cp1252High = [32]rune{
	'€', utf8.RuneError, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', utf8.RuneError, 'Ž', utf8.RuneError,
	utf8.RuneError, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', utf8.RuneError, 'ž', 'Ÿ',
}

func cp1252(c byte) rune {
	if c >= 0x80 && c < 0xa0 {
		return cp1252High[c-0x80]
	}
	return rune(c)
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', 0:
		return true
	}
	return false
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func isRegular(c byte) bool { return !isSpace(c) && !isDelim(c) }

func isNumber(tok []byte) bool {
	digits := 0
	for i, c := range tok {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
		case (c == '-' || c == '+') && i == 0:
		default:
			return false
		}
	}
	return digits > 0
}
