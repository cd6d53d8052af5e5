package pdf

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"strings"
	"testing"

	"codeberg.org/go-pdf/fpdf"

	"github.com/iacc/iacc/worker/pdf/pdftext"
)

// objectsOf splits a document with fpdf's layout into its objects, by
// number, failing the test if its cross-reference table does not point at
// each of them.
func objectsOf(t *testing.T, doc []byte) map[int][]byte {
	t.Helper()
	l, ok := parseLayout(doc)
	if !ok {
		t.Fatalf("cross-reference table does not match the objects (%d bytes)", len(doc))
	}
	objs := make(map[int][]byte, len(l.objs))
	for i, o := range l.objs {
		objs[o.num] = l.object(doc, i)
	}
	return objs
}

// deflatedStream returns the inflated data of obj if it is
// "N 0 obj\n<</Filter /FlateDecode /Length n>>\nstream\n...".
func deflatedStream(t *testing.T, obj []byte) ([]byte, bool) {
	t.Helper()
	_, rest, ok := bytes.Cut(obj, []byte("\n<</Filter /FlateDecode /Length "))
	if !ok {
		return nil, false
	}
	n, ok := intBefore(rest, ">>\nstream\n")
	if !ok {
		t.Fatalf("bad deflated stream header: %.60q", obj)
	}
	data := rest[len(fmt.Sprint(n))+len(">>\nstream\n"):]
	if len(data) != n+len("\nendstream\nendobj\n") || !bytes.HasSuffix(data, []byte("\nendstream\nendobj\n")) {
		t.Fatalf("stream length %d does not match its data (%d bytes before endstream)", n, len(data))
	}
	zr, err := zlib.NewReader(bytes.NewReader(data[:n]))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out, true
}

// A three-page document laid out by fpdf without compression, deflated
// afterwards: every object is the same except the page contents, which
// inflate to the same bytes, and the cross-reference table follows the
// objects' new offsets.
func TestDeflateStreamsKeepsTheDocument(t *testing.T) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCompression(false)
	p.SetCatalogSort(true)
	p.SetFont("Helvetica", "", 11)
	for page := range 3 {
		p.AddPage()
		for line := range 40 {
			p.CellFormat(0, 6, fmt.Sprintf("page %d line %d: some text that repeats", page+1, line+1), "", 1, "L", false, 0, "")
		}
	}
	var raw bytes.Buffer
	if err := p.Output(&raw); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := deflateStreams(&out, raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if out.Len() >= raw.Len()/2 {
		t.Errorf("deflated document is %d bytes, the plain one %d", out.Len(), raw.Len())
	}
	before, after := objectsOf(t, raw.Bytes()), objectsOf(t, out.Bytes())
	if len(before) != len(after) {
		t.Fatalf("%d objects before, %d after", len(before), len(after))
	}
	deflated := 0
	for num, a := range after {
		b := before[num]
		head, data, _, plain := plainStream(b, num)
		if !plain {
			if !bytes.Equal(a, b) {
				t.Errorf("object %d changed:\n%.200q\n%.200q", num, b, a)
			}
			continue
		}
		got, ok := deflatedStream(t, a)
		if !ok || !bytes.HasPrefix(a, head) {
			t.Errorf("object %d not deflated: %.80q", num, a)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("object %d inflates to other bytes", num)
		}
		deflated++
	}
	if deflated != 3 {
		t.Errorf("%d streams deflated, want the 3 pages'", deflated)
	}
	// The trailer is kept, and startxref points at the new table.
	if !bytes.Contains(out.Bytes(), []byte("trailer\n<<\n/Size ")) || !bytes.HasSuffix(out.Bytes(), []byte("%%EOF\n")) {
		t.Errorf("trailer lost: %q", out.Bytes()[max(out.Len()-120, 0):])
	}
	want, err := pdftext.Extract(raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := pdftext.Extract(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got != want || !strings.Contains(got, "page 3 line 40") {
		t.Errorf("text differs after deflating:\n%q\n%q", want, got)
	}
}

// Anything without fpdf's layout is written as it is.
func TestDeflateStreamsLeavesOtherFilesAlone(t *testing.T) {
	doc := render(t, samplePO())
	for name, in := range map[string][]byte{
		"not a PDF":          []byte("hello"),
		"no startxref":       bytes.ReplaceAll(doc, []byte("startxref"), []byte("startxreg")),
		"startxref past end": append(bytes.Clone(doc[:bytes.LastIndex(doc, []byte("startxref"))]), "startxref\n99999999\n%%EOF\n"...),
		"entry off target":   bytes.Replace(doc, []byte(" 00000 n \n"), []byte(" 00001 n \n"), 1),
		"truncated":          doc[:len(doc)-200],
	} {
		var out bytes.Buffer
		if err := deflateStreams(&out, in); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Errorf("%s: changed", name)
		}
	}
}

// What the layouts write leaves no stream uncompressed, in either face and
// over several pages, and keeps a table that matches the objects: if an fpdf
// upgrade changed its layout, documents would silently grow threefold.
func TestRenderedDocumentsAreDeflated(t *testing.T) {
	po := samplePO()
	unicode := samplePO()
	unicode.Vendor.Name = "ООО Москва Трейдинг"
	for name, doc := range map[string][]byte{
		"order":           render(t, po),
		"order, ttf":      render(t, unicode),
		"report, 4 pages": renderReport(t, sampleReport(150)),
		"invoice, cp1252": renderAny(t, latinInvoice()),
		"report, cp1252":  renderAny(t, latinReport()),
	} {
		streams := 0
		for num, obj := range objectsOf(t, doc) {
			if _, _, _, plain := plainStream(obj, num); plain {
				t.Errorf("%s: object %d is not compressed", name, num)
			}
			if _, ok := deflatedStream(t, obj); ok {
				streams++
			}
		}
		if streams == 0 {
			t.Errorf("%s: no deflated stream", name)
		}
	}
}
