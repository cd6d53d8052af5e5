package pdf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// Font families the documents select: the embedded Go fonts, and fpdf's
// core Helvetica (a standard PDF font: nothing is embedded).
const (
	fontFamily     = "go"
	coreFontFamily = "helvetica"
)

// Fonts are the fonts documents are shown in, and what each can show.
//
// Every document is shown in one of two faces, chosen once per document
// before it is laid out (see Fonts.faceFor):
//
//   - core: fpdf's core Helvetica and Helvetica-Bold, with text translated to
//     cp1252 (WinAnsiEncoding). Nothing is embedded, so it is several times
//     cheaper to render (no font parsing or subsetting), and text is written
//     as literal strings that any PDF reader can search. It is used when
//     every string the document shows is representable in cp1252: ASCII, the
//     Latin-1 supplement, € Š Œ – — ‘ ’ “ ” … ™ and the rest of the
//     Windows-1252 repertoire (the set is read from fpdf's own cp1252 table).
//   - ttf: the TrueType Go Regular and Go Bold (golang.org/x/image/font/gofont),
//     which cover Latin, Greek and Cyrillic scripts and the common symbols.
//     Text is written as UTF-8 and embedded as a per-document subset with a
//     ToUnicode map. Used for every document with other characters (Łódź,
//     Москва, Ελληνικά...).
//
// Both faces clean text the same way (see clean): a document looks the same
// in either, except for the typeface.
//
// A Fonts is built once (LoadFonts) and is immutable afterwards: it is safe
// for concurrent use by any number of renders.
//
// fpdf itself has no way to share a parsed TrueType font between documents:
// every render in the ttf face hands it the font bytes and it parses and
// subsets them for that document (about 6 ms of CPU and 9 MB of garbage per
// document). What Fonts holds once per process is the font data, checked to
// be accepted by fpdf, the set of characters both fonts can show, which the
// renderers use to replace what they cannot, and the cp1252 table.
type Fonts struct {
	regular, bold []byte
	covered       *runeSet      // characters both TrueType fonts have a glyph for
	replacement   rune          // shown for characters the TrueType fonts lack
	cp1252        map[rune]byte // the cp1252 byte of each representable rune >= 0x80

	ttf, core face
}

// face is how a document shows text: the font family its pages select (with
// styles "" and "B") and how its text is prepared for fpdf. It is the only
// thing the layouts' shared frame (document) varies between the fonts.
type face struct {
	name   string // "core" or "ttf", for tests and errors
	family string
	// utf8: prepared text is UTF-8 for fpdf's UTF-8 fonts, which must be
	// registered with every document; otherwise it is cp1252, one byte per
	// character.
	utf8 bool
	// prepare cleans s (see Fonts.clean) and encodes it for the face's
	// fonts. exact is false when a character had to be replaced by the
	// replacement character ('?' in cp1252).
	prepare func(s string, multiline bool) (out string, exact bool)
}

// LoadFonts checks the embedded fonts and computes the characters they cover.
// It fails only if the compiled-in font data is broken.
func LoadFonts() (*Fonts, error) {
	regular, err := cmapCoverage(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("pdf: load font Go Regular: %w", err)
	}
	bold, err := cmapCoverage(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("pdf: load font Go Bold: %w", err)
	}
	covered := new(runeSet)
	for i := range covered {
		covered[i] = regular[i] & bold[i]
	}
	for r := range rune(0xa0) { // control characters are not text to show
		if r < 0x20 || r >= 0x7f {
			covered.remove(r)
		}
	}
	f := &Fonts{regular: goregular.TTF, bold: gobold.TTF, covered: covered, replacement: '?'}
	if covered.has(utf8.RuneError) {
		f.replacement = utf8.RuneError
	}
	// fpdf reports a font it cannot parse only when the font is selected.
	p := fpdf.New("P", "mm", "A4", "")
	f.addTo(p)
	for _, family := range [...]string{fontFamily, coreFontFamily} {
		p.SetFont(family, "", 10)
		p.SetFont(family, "B", 10)
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("pdf: load fonts: %w", err)
	}
	if f.cp1252, err = cp1252Table(p.UnicodeTranslatorFromDescriptor("")); err != nil {
		return nil, fmt.Errorf("pdf: load cp1252 table: %w", err)
	}
	f.ttf = face{name: "ttf", family: fontFamily, utf8: true, prepare: f.cleanUTF8}
	f.core = face{name: "core", family: coreFontFamily, prepare: f.cleanCP1252}
	return f, nil
}

// cp1252Table reads the cp1252 code page out of fpdf's translator for it
// (UnicodeTranslatorFromDescriptor("")), the table fpdf's core font metrics
// are indexed by: it returns the byte of every rune from U+0080 up that
// cp1252 can represent (123 of them; ASCII maps to itself).
//
// The translator itself is not used to render: it parses its table every
// time one is made and shares a buffer between calls (it is not safe for
// concurrent use). It is asked once here, with every rune of the Basic
// Multilingual Plane from U+0080 up in one string; it translates each to one
// byte, "." for those the code page lacks.
func cp1252Table(translate func(string) string) (map[rune]byte, error) {
	var b strings.Builder
	var runes []rune
	for r := rune(0x80); r <= 0xffff; r++ {
		if utf8.ValidRune(r) { // not a surrogate half
			b.WriteRune(r)
			runes = append(runes, r)
		}
	}
	out := translate(b.String())
	if len(out) != len(runes) {
		return nil, fmt.Errorf("translator gave %d bytes for %d runes", len(out), len(runes))
	}
	m := make(map[rune]byte, 128)
	for i, r := range runes {
		if c := out[i]; c != '.' {
			if c < 0x80 {
				return nil, fmt.Errorf("translator maps U+%04X to ASCII %q", r, c)
			}
			m[r] = c
		}
	}
	if len(m) != 123 { // 0x80-0xFF without the 5 codes cp1252 leaves undefined
		return nil, fmt.Errorf("translator knows %d characters above U+007F, want 123", len(m))
	}
	return m, nil
}

// defaultFonts serves the package-level Render functions. It is built on
// first use and never changes afterwards; the Handler builds its own Fonts.
var defaultFonts = sync.OnceValues(LoadFonts)

// addTo registers the TrueType fonts with a new document.
func (f *Fonts) addTo(p *fpdf.Fpdf) {
	p.AddUTF8FontFromBytes(fontFamily, "", f.regular)
	p.AddUTF8FontFromBytes(fontFamily, "B", f.bold)
}

// covers reports whether the TrueType fonts can show r (control characters
// are not shown).
func (f *Fonts) covers(r rune) bool { return f.covered.has(r) }

// faceFor chooses the face of a document from every string it will show
// (fixed labels, numbers and dates are ASCII and need not be listed): core if
// all of them are representable in cp1252 once cleaned, ttf otherwise.
func (f *Fonts) faceFor(texts iter.Seq[string]) *face {
	for s := range texts {
		if !f.fitsCP1252(s) {
			return &f.ttf
		}
	}
	return &f.core
}

// fitsCP1252 reports whether clean(s) is all cp1252: whether cleanCP1252(s)
// is exact. It allocates nothing.
func (f *Fonts) fitsCP1252(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf { // ASCII: shown, or a control character
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch f.classify(r, n) {
		case charShow:
			if _, ok := f.cp1252[r]; !ok {
				return false
			}
		case charReplace:
			return false
		}
	}
	return true
}

// What clean does with a character.
const (
	charShow    = iota // the fonts have it: shown as is
	charBreak          // \r or \n: a line break (\r\n is one)
	charSpace          // another control character: a space
	charDrop           // invisible, or a mark the fonts lack: left out
	charReplace        // invalid UTF-8 or a character the fonts lack
)

// classify says what clean does with r, decoded from n bytes.
func (f *Fonts) classify(r rune, n int) int {
	switch {
	case r == '\r' || r == '\n':
		return charBreak
	case r == utf8.RuneError && n == 1:
		return charReplace
	case r < 0x20 || (r >= 0x7f && r < 0xa0):
		return charSpace
	case unicode.Is(unicode.Cf, r):
		// Invisible (zero-width space, BOM, soft hyphen...).
		return charDrop
	case f.covered.has(r):
		return charShow
	case unicode.In(r, unicode.Mn, unicode.Me):
		// A mark on the previous character the fonts lack.
		return charDrop
	}
	return charReplace
}

// clean makes s safe to hand to fpdf and shows what the fonts cannot:
// invalid UTF-8 and characters the TrueType fonts lack (everything outside
// the Basic Multilingual Plane among them, which fpdf cannot encode) become
// the replacement character; invisible format characters (zero-width space,
// BOM, soft hyphen...) and combining marks the fonts lack are dropped; tabs
// and other control characters become spaces. With multiline, line breaks
// (\n, \r\n, \r) are kept as "\n"; without, they become spaces too.
//
// The result is UTF-8, for the ttf face and the document metadata.
func (f *Fonts) clean(s string, multiline bool) string {
	out, _ := f.cleanUTF8(s, multiline)
	return out
}

func (f *Fonts) cleanUTF8(s string, multiline bool) (string, bool) {
	return f.cleanTo(s, multiline, false)
}

// cleanCP1252 is clean for the core face: the same characters are shown,
// dropped and turned into spaces, and the result is encoded in cp1252. What
// cp1252 lacks becomes '?' (and the result is not exact); faceFor chooses
// the core face only for documents where that cannot happen.
func (f *Fonts) cleanCP1252(s string, multiline bool) (string, bool) {
	return f.cleanTo(s, multiline, true)
}

func (f *Fonts) cleanTo(s string, multiline, cp1252 bool) (string, bool) {
	// Fast path: printable ASCII the fonts cover needs no copy (and is the
	// same in UTF-8 and cp1252).
	i := 0
	for i < len(s) {
		c := s[i]
		if c < 0x20 || c >= 0x7f || !f.covered.has(rune(c)) {
			break
		}
		i++
	}
	if i == len(s) {
		return s, true
	}
	exact := true
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		if c := s[i]; c >= 0x20 && c < 0x7f && f.covered.has(rune(c)) {
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch f.classify(r, n) {
		case charBreak:
			if r == '\r' && i < len(s) && s[i] == '\n' {
				i++
			}
			if multiline {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case charSpace:
			b.WriteByte(' ')
		case charDrop:
		case charShow:
			switch {
			case !cp1252:
				b.WriteRune(r)
			case r < utf8.RuneSelf:
				b.WriteByte(byte(r))
			default:
				c, ok := f.cp1252[r]
				if !ok {
					c, exact = '?', false
				}
				b.WriteByte(c)
			}
		case charReplace:
			exact = false
			if cp1252 {
				b.WriteByte('?')
			} else {
				b.WriteRune(f.replacement)
			}
		}
	}
	return b.String(), exact
}

// runeSet is a set of runes of the Basic Multilingual Plane.
type runeSet [0x10000 / 64]uint64

func (s *runeSet) has(r rune) bool {
	return r >= 0 && r < 0x10000 && s[r>>6]&(1<<(uint(r)&63)) != 0
}

func (s *runeSet) add(r rune) { s[r>>6] |= 1 << (uint(r) & 63) }

func (s *runeSet) remove(r rune) { s[r>>6] &^= 1 << (uint(r) & 63) }

var errFontFormat = errors.New("not a TrueType font with a Unicode (3,1 or 0,x) format 4 cmap")

// cmapCoverage returns the characters a TrueType font maps to a glyph other
// than .notdef, read from the same cmap subtable fpdf uses (format 4 of
// platform 3 encoding 1, or of platform 0), so that coverage means "fpdf can
// show it".
func cmapCoverage(ttf []byte) (*runeSet, error) {
	u16 := func(off int) (int, bool) {
		if off < 0 || off+2 > len(ttf) {
			return 0, false
		}
		return int(binary.BigEndian.Uint16(ttf[off:])), true
	}
	u32 := func(off int) (int, bool) {
		if off < 0 || off+4 > len(ttf) {
			return 0, false
		}
		return int(binary.BigEndian.Uint32(ttf[off:])), true
	}
	numTables, ok := u16(4)
	if !ok {
		return nil, errFontFormat
	}
	cmap := -1
	for i := range numTables {
		rec := 12 + 16*i
		if rec+16 > len(ttf) {
			return nil, errFontFormat
		}
		if string(ttf[rec:rec+4]) == "cmap" {
			cmap, _ = u32(rec + 8)
			break
		}
	}
	if cmap < 0 {
		return nil, errFontFormat
	}
	n, ok := u16(cmap + 2)
	if !ok {
		return nil, errFontFormat
	}
	sub := -1
	for i := range n {
		rec := cmap + 4 + 8*i
		platform, ok1 := u16(rec)
		encoding, ok2 := u16(rec + 2)
		off, ok3 := u32(rec + 4)
		if !ok1 || !ok2 || !ok3 {
			return nil, errFontFormat
		}
		if format, ok := u16(cmap + off); ok && format == 4 && (platform == 3 && encoding == 1 || platform == 0) {
			sub = cmap + off
			break
		}
	}
	if sub < 0 {
		return nil, errFontFormat
	}
	segX2, ok := u16(sub + 6)
	if !ok || segX2 == 0 || segX2%2 != 0 {
		return nil, errFontFormat
	}
	ends := sub + 14
	starts := ends + segX2 + 2
	deltas := starts + segX2
	rangeOffsets := deltas + segX2
	set := new(runeSet)
	for seg := 0; seg < segX2; seg += 2 {
		end, ok1 := u16(ends + seg)
		start, ok2 := u16(starts + seg)
		delta, ok3 := u16(deltas + seg)
		ro, ok4 := u16(rangeOffsets + seg)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, errFontFormat
		}
		for c := start; c <= end && c < 0xffff; c++ {
			glyph := 0
			if ro == 0 {
				glyph = (c + delta) & 0xffff
			} else if g, ok := u16(rangeOffsets + seg + ro + 2*(c-start)); ok && g != 0 {
				glyph = (g + delta) & 0xffff
			}
			if glyph != 0 {
				set.add(rune(c))
			}
		}
	}
	return set, nil
}
