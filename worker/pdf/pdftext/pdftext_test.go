package pdftext

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/worker/pdf"
)

// flate compresses b the way fpdf does (zlib).
func flate(t testing.TB, b string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write([]byte(b)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// doc assembles a minimal PDF-looking file from stream objects: each entry is
// the dictionary body and the (already encoded) data.
func doc(streams ...[2]string) []byte {
	var b strings.Builder
	b.WriteString("%PDF-1.3\n")
	for i, s := range streams {
		fmt.Fprintf(&b, "%d 0 obj\n<<%s>>\nstream\n%s\nendstream\nendobj\n", i+1, s[0], s[1])
	}
	b.WriteString("trailer\n<</Root 1 0 R>>\n%%EOF\n")
	return []byte(b.String())
}

// samplePDF renders a purchase order of Latin-1 text: the renderer shows it
// in the core Helvetica font, as literal cp1252 strings.
func samplePDF(t testing.TB) []byte {
	t.Helper()
	return renderSample(t, "Café Müller")
}

// sampleUnicodePDF renders the same order for a vendor whose name cp1252
// lacks: the renderer embeds its TrueType fonts (Identity-H, ToUnicode).
func sampleUnicodePDF(t testing.TB) []byte {
	t.Helper()
	return renderSample(t, "Łódź Москва")
}

func renderSample(t testing.TB, vendor string) []byte {
	t.Helper()
	po := pdf.PurchaseOrder{
		TenantName: "Acme",
		Number:     "PO-000007",
		Status:     "draft",
		Currency:   "EUR",
		Notes:      "Fragile (glass) \\ handle with care",
		CreatedAt:  time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Vendor:     pdf.Party{Name: vendor, Email: "a@b.example", Address: "Hauptstraße 1"},
		Items: []pdf.Line{{
			Description: "Espresso beans (1 kg)",
			Quantity:    decimal.RequireFromString("3"),
			UnitPrice:   decimal.RequireFromString("19.90"),
			LineTotal:   decimal.RequireFromString("59.70"),
		}},
		Total: decimal.RequireFromString("59.70"),
	}
	var buf bytes.Buffer
	if err := pdf.RenderPurchaseOrder(context.Background(), &buf, po); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractRendered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pdf    []byte
		vendor string
		font   string // what the fonts' dictionaries show
	}{
		{"core", samplePDF(t), "Café Müller", "/BaseFont /Helvetica"},
		{"ttf", sampleUnicodePDF(t), "Łódź Москва", "/ToUnicode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(tc.pdf, []byte(tc.font)) {
				t.Errorf("the sample does not use the expected fonts (%s)", tc.font)
			}
			got, err := Extract(tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"Acme\n", "Purchase order PO-000007\n", tc.vendor + "\n", "Hauptstraße 1\n",
				"Espresso beans (1 kg)\n", "59.70\n", "Fragile (glass) \\ handle with care\n", "Page 1 of 1\n",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("missing %q in:\n%s", want, got)
				}
			}
		})
	}
}

func TestExtractOperatorsAndStrings(t *testing.T) {
	content := `BT /F1 12 Tf 10 10 Td
(plain) Tj
(esc \(paren\) back\\slash \101\102C \7 new\nline tab\tend) Tj
(nested (balanced) parens) Tj
(cont\
inued) Tj
<48656c6c6f> Tj
<48 65 6C 6C 6F 2> Tj
[(K) -20 (ern) -500 (ing)] TJ
(quote op) '
1 2 (dquote op) "
<FEFF00480069002000E9> Tj
(caf\351 \200) Tj
() Tj
% (a comment) Tj
/Name (not shown)
ET`
	got, err := Extract(doc([2]string{"/Length 9999", content}))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"plain",
		"esc (paren) back\\slash ABC \a new line tab\tend",
		"nested (balanced) parens",
		"continued",
		"Hello",
		"Hello ", // odd digit padded with 0: 0x20
		"Kern ing",
		"quote op",
		"dquote op",
		"Hi é",
		"café €",
	}, "\n") + "\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestExtractStreams(t *testing.T) {
	img := "\x00\x01(binary) Tj\xff"
	content := "BT (visible) Tj ET"
	data := doc(
		[2]string{"/Length 5 0 R /Filter /FlateDecode", flate(t, "BT (deflated, indirect length) Tj ET")},
		[2]string{"/Filter [/FlateDecode] /Length 0", flate(t, "BT (array filter, wrong length) Tj ET")},
		[2]string{"/Type /XObject /Subtype /Image /Width 1", img},
		[2]string{"/Length1 100", "BT (font program) Tj ET"},
		[2]string{"/Filter /ASCIIHexDecode", "425420286865782920546a204554>"},
		[2]string{fmt.Sprintf("/Length %d", len(content)), content},
	)
	got, err := Extract(data)
	if err != nil {
		t.Fatal(err)
	}
	want := "deflated, indirect length\narray filter, wrong length\nvisible\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestExtractLengthWithEndstreamInData(t *testing.T) {
	content := "BT (a endstream b) Tj ET"
	got, err := Extract(doc([2]string{fmt.Sprintf("/Length %d", len(content)), content}))
	if err != nil {
		t.Fatal(err)
	}
	if got != "a endstream b\n" {
		t.Errorf("got %q", got)
	}
}

func TestExtractInlineImageSkipped(t *testing.T) {
	content := "BT (before) Tj ET\nBI /W 2 /H 1 /BPC 8 /CS /G ID \x00(junk) Tj\xffEIx EI\nBT (after) Tj ET"
	got, err := Extract(doc([2]string{"", content}))
	if err != nil {
		t.Fatal(err)
	}
	if got != "before\nafter\n" {
		t.Errorf("got %q", got)
	}
}

func TestExtractNotPDF(t *testing.T) {
	for _, in := range []string{"", "hello", "PDF-1.4", " %PDF-1.4", "\x89PNG\r\n"} {
		if _, err := Extract([]byte(in)); !errors.Is(err, ErrNotPDF) {
			t.Errorf("Extract(%q) err = %v, want ErrNotPDF", in, err)
		}
	}
}

func TestExtractCorruptFlate(t *testing.T) {
	z := flate(t, "BT (x) Tj ET")
	for name, data := range map[string]string{
		"not zlib":  "this is not zlib data",
		"truncated": z[:len(z)/2],
		"bad sum":   z[:len(z)-1] + string(z[len(z)-1]^0xff),
	} {
		_, err := Extract(doc([2]string{"/Filter /FlateDecode", data}))
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestExtractTruncatedFile(t *testing.T) {
	full := sampleUnicodePDF(t)
	// Cut inside the first page's content stream: either an inflate error
	// or partial text, but never a panic.
	i := bytes.Index(full, []byte("stream\n"))
	if _, err := Extract(full[:i+20]); err == nil {
		t.Log("truncated stream inflated without error")
	}
	// Cut after the page content, before the fonts (fpdf writes them last):
	// the strings are there but their fonts' ToUnicode maps are not; no
	// error either.
	end := bytes.Index(full, []byte("endstream"))
	if _, err := Extract(full[:end+len("endstream")+1]); err != nil {
		t.Fatal(err)
	}
	// Cut before the cross-reference table: every object is complete, so
	// is the text.
	x := bytes.LastIndex(full, []byte("\nxref"))
	got, err := Extract(full[:x+1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PO-000007\n", "Łódź Москва\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("text lost from a file cut before xref: %q", got)
		}
	}
}

// objDoc assembles a PDF-looking file from object bodies, numbered from 1.
func objDoc(objs ...string) []byte {
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	for i, o := range objs {
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	b.WriteString("trailer\n<</Root 1 0 R>>\n%%EOF\n")
	return []byte(b.String())
}

func streamObj(dict, data string) string {
	return fmt.Sprintf("<<%s /Length %d>>\nstream\n%s\nendstream", dict, len(data), data)
}

const cmapHead = `/CIDInit /ProcSet findresource begin 12 dict begin begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def /CMapType 2 def
`
const cmapTail = "endcmap CMapName currentdict /CMap defineresource pop end end"

func TestExtractToUnicode(t *testing.T) {
	twoByte := cmapHead + `1 begincodespacerange <0000> <FFFF> endcodespacerange
3 beginbfchar
<0001> <0048>
<0002> <00E9>
<0003> <D83DDE00>
endbfchar
2 beginbfrange
<0010> <0012> <0041>
<0020> <0021> [<0066006C> <03A9>]
endbfrange
` + cmapTail
	oneByte := cmapHead + `1 begincodespacerange <00> <FF> endcodespacerange
1 beginbfrange <41> <5A> <0061> endbfrange
` + cmapTail
	content := `BT /F1 12 Tf <00010002> Tj [<0010> -300 <00110012>] TJ
q /F2 10 Tf <414243> Tj [(A) -20 (Z)] TJ Q
<00030020002100FF> Tj ET
BT /F3 9 Tf (caf\351) Tj ET`
	data := objDoc(
		"<< /ProcSet [/PDF /Text] /Font << /F1 2 0 R /F2 5 0 R /F3 7 0 R >> >>",
		"<< /Type /Font /Subtype /Type0 /Encoding /Identity-H /DescendantFonts [8 0 R] /ToUnicode 3 0 R >>",
		streamObj("", twoByte),
		streamObj("", content),
		"<</Type /Font\n/Subtype /Type0\n/ToUnicode 6 0 R>>",
		streamObj("/Filter /FlateDecode", flate(t, oneByte)),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		"<< /Type /Font /Subtype /CIDFontType2 /CIDToGIDMap 9 0 R /FontDescriptor 10 0 R >>",
		streamObj("", "BT (not text: a CIDToGIDMap) Tj ET"),
		"<< /Type /FontDescriptor /FontFile2 11 0 R >>",
		streamObj("", "BT (not text: a font program) Tj ET"),
	)
	got, err := Extract(data)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"Hé",
		"A BC",  // bfrange, with a word gap
		"abc",   // one-byte codes in F2
		"az",    // literal strings are codes too
		"😀flΩ�", // back to F1 after Q: a surrogate pair, an array range, an unmapped code
		"café",  // a font without ToUnicode: WinAnsiEncoding
	}, "\n") + "\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestParseCMap(t *testing.T) {
	c := parseCMap([]byte(`begincodespacerange <00> <7F> <8000> <FFFF> endcodespacerange
beginbfrange <00FE> <0101> <00FE> <0041> <0043> <00410301> endbfrange
beginbfchar <20> <0020> <8001> /space <8002> endbfchar
beginbfrange <10> <0F> <0030> <99> endbfrange
beginbfrange <30> <39> <0030> (garbage) <A0> <A1> [<0078>] endbfrange`))
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte{0x20}, " "},
		{[]byte{0x30, 0x39}, "09"},
		{[]byte{0x80, 0x01}, "�"},  // a name is not a destination
		{[]byte{0x10}, "�"},        // lo > hi: dropped
		{[]byte{0x00, 0x41}, "��"}, // one-byte codes here, unmapped
		{[]byte{0xFF}, "�"},        // a truncated two-byte code
	} {
		if got := string(c.decode(nil, tc.in)); got != tc.want {
			t.Errorf("decode(% X) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Destinations count up as numbers (carrying), multi-unit ones too.
	for code, want := range map[uint32]string{0xFE: "þ", 0xFF: "ÿ", 0x100: "Ā", 0x101: "ā", 0x41: "A\u0301", 0x43: "A\u0303"} {
		if got, ok := c.lookup(2, code); !ok || got != want {
			t.Errorf("lookup(2, %#x) = %q, %v; want %q", code, got, ok, want)
		}
	}
	if got, ok := c.lookup(1, 0xA0); !ok || got != "x" {
		t.Errorf("array range: %q, %v", got, ok)
	}
	if _, ok := c.lookup(1, 0xA1); ok {
		t.Error("array range past its array")
	}
}

func TestExtractNoText(t *testing.T) {
	got, err := Extract([]byte("%PDF-1.7\n%%EOF\n"))
	if err != nil || got != "" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestExtractInflateLimit(t *testing.T) {
	defer func(n int) { maxInflated = n }(maxInflated)
	maxInflated = 1 << 20
	// Two streams of 600 KiB of spaces: each alone fits, together they
	// exceed the budget, and the inflating stops there.
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zw.Write(bytes.Repeat([]byte{' '}, 600<<10))
	zw.Close()
	one := doc([2]string{"/Filter /FlateDecode", buf.String()})
	if _, err := Extract(one); err != nil {
		t.Fatalf("one stream under the limit: %v", err)
	}
	two := doc([2]string{"/Filter /FlateDecode", buf.String()}, [2]string{"/Filter /FlateDecode", buf.String()})
	_, err := Extract(two)
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v, want inflate limit error", err)
	}
}

func FuzzExtract(f *testing.F) {
	for _, real := range [][]byte{samplePDF(f), sampleUnicodePDF(f)} {
		f.Add(real)
		f.Add(real[:len(real)/2])
	}
	f.Add(doc([2]string{"", `BT (a\(b\)c\\\101) Tj <414> Tj [(x) -300 (y)] TJ (q) ' 1 2 (d) " ET`}))
	f.Add(objDoc("<< /Font << /F1 2 0 R >> >>", "<< /ToUnicode 3 0 R >>",
		streamObj("", "begincodespacerange <0000> <FFFF> endcodespacerange beginbfrange <0000> <FFFF> <0000> endbfrange beginbfchar <0001> <D83D> endbfchar"),
		streamObj("", "BT /F1 9 Tf <0041000100E9> Tj q /F9 1 Tf (x) Tj Q Q Q [<0042> -500 (\\000C)] TJ ET")))
	f.Add(doc([2]string{"/Filter /FlateDecode /Length 3", "xyz"}))
	f.Add(doc([2]string{"", "BI /W 1 ID \x00\x01 EI [[[(deep"}))
	f.Add([]byte("%PDF-1.4\nstream\r\n((((((\\"))
	f.Add([]byte("%PDF-\nobj /Length 99999999999999999999 stream\nendstream"))
	f.Add([]byte("%PDF-1.4 << /Filter [/FlateDecode >> stream\n\x78\x9c"))
	f.Add([]byte("not a pdf at all"))
	f.Add([]byte{0x25, 0x50, 0x44, 0x46, 0x2d, 0xff, 0x00, 0xfe, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Extract(in)
		if err != nil {
			if got != "" {
				t.Errorf("text %q returned with error %v", got, err)
			}
			return
		}
		if !bytes.HasPrefix(in, []byte("%PDF-")) {
			t.Errorf("no error for input without header")
		}
		if got != "" && !strings.HasSuffix(got, "\n") {
			t.Errorf("output %q does not end with a newline", got)
		}
		if strings.Contains(got, "\n\n") || strings.HasPrefix(got, "\n") {
			t.Errorf("output %q has an empty run", got)
		}
	})
}
