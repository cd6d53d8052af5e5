package pdftext

import (
	"bytes"
	"encoding/binary"
	"sort"
	"unicode/utf16"
	"unicode/utf8"
)

// cmap is a parsed ToUnicode CMap: it splits a shown string into character
// codes (by the codespace ranges) and maps each code to Unicode text.
type cmap struct {
	spaces []codespace
	lens   []int             // code lengths seen in the mappings, ascending
	chars  map[uint64]string // bfchar: codeKey(len, code) -> text
	ranges []bfrange         // sorted by (n, lo)
}

// codespace is one codespace range: codes of len(lo) bytes, each byte
// within the bounds of the same byte of lo and hi.
type codespace struct{ lo, hi []byte }

type bfrange struct {
	n      int // code length in bytes
	lo, hi uint32
	dst    []byte   // UTF-16BE of lo's text; later codes increment it
	dsts   []string // or one text per code (the array form)
}

// maxCodeLen is the longest character code handled (the PDF maximum).
const maxCodeLen = 4

// maxCodespaces bounds the codespace ranges kept (each code is tried
// against them); real CMaps have a handful.
const maxCodespaces = 64

func codeKey(n int, code uint32) uint64 { return uint64(n)<<32 | uint64(code) }

func codeValue(b []byte) uint32 {
	var v uint32
	for _, c := range b {
		v = v<<8 | uint32(c)
	}
	return v
}

// utf16Text decodes UTF-16BE (the destination strings of a ToUnicode CMap);
// an odd trailing byte is ignored, unpaired surrogates become U+FFFD.
func utf16Text(b []byte) string {
	if len(b) == 2 && b[0] == 0 && b[1] < utf8.RuneSelf {
		return string(rune(b[1]))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// parseCMap reads the codespace ranges and the bfchar and bfrange mappings
// of a CMap program; everything else in it is ignored. It never fails: what
// it cannot read is left out.
func parseCMap(data []byte) *cmap {
	c := &cmap{chars: map[uint64]string{}}
	lens := map[int]bool{}
	var section string
	var args []cmapToken
	for t := range cmapTokens(data) {
		if t.kind == tokKeyword {
			switch kw := string(t.text); kw {
			case "begincodespacerange", "beginbfchar", "beginbfrange":
				section, args = kw, args[:0]
			case "endcodespacerange", "endbfchar", "endbfrange":
				section, args = "", args[:0]
			}
			continue
		}
		if section == "" {
			continue
		}
		if len(args) == 0 && t.kind != tokHex {
			continue // a mapping starts with a code: skip junk to resynchronise
		}
		args = append(args, t)
		switch section {
		case "begincodespacerange":
			if len(args) == 2 {
				if lo, hi := args[0], args[1]; lo.kind == tokHex && hi.kind == tokHex && len(c.spaces) < maxCodespaces &&
					len(lo.text) == len(hi.text) && len(lo.text) >= 1 && len(lo.text) <= maxCodeLen {
					c.spaces = append(c.spaces, codespace{lo: lo.text, hi: hi.text})
				}
				args = args[:0]
			}
		case "beginbfchar":
			if len(args) == 2 {
				if src, dst := args[0], args[1]; src.kind == tokHex && dst.kind == tokHex && len(src.text) >= 1 && len(src.text) <= maxCodeLen {
					c.chars[codeKey(len(src.text), codeValue(src.text))] = utf16Text(dst.text)
					lens[len(src.text)] = true
				}
				args = args[:0]
			}
		case "beginbfrange":
			if len(args) == 3 {
				lo, hi, dst := args[0], args[1], args[2]
				n := len(lo.text)
				if lo.kind == tokHex && hi.kind == tokHex && n == len(hi.text) && n >= 1 && n <= maxCodeLen &&
					codeValue(lo.text) <= codeValue(hi.text) {
					r := bfrange{n: n, lo: codeValue(lo.text), hi: codeValue(hi.text)}
					switch dst.kind {
					case tokHex:
						r.dst = dst.text
					case tokArray:
						for _, d := range dst.items {
							r.dsts = append(r.dsts, utf16Text(d))
						}
					}
					if r.dst != nil || r.dsts != nil {
						c.ranges = append(c.ranges, r)
						lens[n] = true
					}
				}
				args = args[:0]
			}
		}
	}
	for n := 1; n <= maxCodeLen; n++ {
		if lens[n] {
			c.lens = append(c.lens, n)
		}
	}
	sort.SliceStable(c.ranges, func(i, j int) bool {
		a, b := c.ranges[i], c.ranges[j]
		if a.n != b.n {
			return a.n < b.n
		}
		return a.lo < b.lo
	})
	return c
}

// codeLen is the length of the character code at the start of s.
func (c *cmap) codeLen(s []byte) int {
	for _, sp := range c.spaces {
		n := len(sp.lo)
		if n > len(s) {
			continue
		}
		in := true
		for k := range n {
			if s[k] < sp.lo[k] || s[k] > sp.hi[k] {
				in = false
				break
			}
		}
		if in {
			return n
		}
	}
	// No codespace says: take the first length that has a mapping, else
	// the shortest length in use.
	for _, n := range c.lens {
		if n <= len(s) {
			if _, ok := c.lookup(n, codeValue(s[:n])); ok {
				return n
			}
		}
	}
	if len(c.spaces) > 0 {
		return min(len(c.spaces[0].lo), len(s))
	}
	if len(c.lens) > 0 {
		return min(c.lens[0], len(s))
	}
	return 1
}

func (c *cmap) lookup(n int, code uint32) (string, bool) {
	if s, ok := c.chars[codeKey(n, code)]; ok {
		return s, true
	}
	// The last range starting at or before code.
	i := sort.Search(len(c.ranges), func(i int) bool {
		r := c.ranges[i]
		return r.n > n || r.n == n && r.lo > code
	}) - 1
	if i < 0 {
		return "", false
	}
	r := c.ranges[i]
	if r.n != n || code > r.hi {
		return "", false
	}
	off := code - r.lo
	if r.dsts != nil {
		if int64(off) < int64(len(r.dsts)) {
			return r.dsts[off], true
		}
		return "", false
	}
	// The destination counts up with the code: add the offset to its last
	// (up to four) bytes as one big-endian number.
	dst := bytes.Clone(r.dst)
	k := max(len(dst)-4, 0)
	v := codeValue(dst[k:]) + off
	for j := len(dst) - 1; j >= k; j-- {
		dst[j] = byte(v)
		v >>= 8
	}
	return utf16Text(dst), true
}

// decode appends the text of the shown string s to out.
func (c *cmap) decode(out, s []byte) []byte {
	for i := 0; i < len(s); {
		n := max(c.codeLen(s[i:]), 1)
		if text, ok := c.lookup(n, codeValue(s[i:i+n])); ok {
			out = append(out, text...)
		} else {
			out = utf8.AppendRune(out, utf8.RuneError)
		}
		i += n
	}
	return out
}

// CMap tokens.

const (
	tokOther byte = iota
	tokHex
	tokKeyword
	tokArray
)

type cmapToken struct {
	kind  byte
	text  []byte   // hex string bytes, or the keyword
	items [][]byte // hex strings of an array
}

// cmapTokens yields the tokens of a CMap program that matter for parseCMap:
// hex strings, keywords, and arrays of hex strings; names, numbers,
// dictionaries and literal strings come out as tokOther.
func cmapTokens(b []byte) func(yield func(cmapToken) bool) {
	return func(yield func(cmapToken) bool) {
		for i := 0; i < len(b); {
			c := b[i]
			var t cmapToken
			switch {
			case isSpace(c):
				i++
				continue
			case c == '%':
				for i < len(b) && b[i] != '\n' && b[i] != '\r' {
					i++
				}
				continue
			case c == '<' && i+1 < len(b) && b[i+1] == '<', c == '>' && i+1 < len(b) && b[i+1] == '>':
				i += 2
			case c == '<':
				s, n := hexString(b[i:])
				i += n
				t = cmapToken{kind: tokHex, text: s}
			case c == '(':
				_, n := literalString(b[i:])
				i += n
			case c == '[':
				i++
				t.kind = tokArray
				for i < len(b) && b[i] != ']' {
					if b[i] == '<' {
						s, n := hexString(b[i:])
						t.items = append(t.items, s)
						i += n
						continue
					}
					i++
				}
				i++ // ']'
			case c == '/':
				j := i + 1
				for j < len(b) && isRegular(b[j]) {
					j++
				}
				i = j
			case isRegular(c):
				j := i
				for j < len(b) && isRegular(b[j]) {
					j++
				}
				if !isNumber(b[i:j]) {
					t = cmapToken{kind: tokKeyword, text: b[i:j]}
				}
				i = j
			default:
				i++
				continue
			}
			if !yield(t) {
				return
			}
		}
	}
}
