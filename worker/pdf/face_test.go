package pdf

import (
	"bytes"
	"context"
	"iter"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"

	"github.com/iacc/iacc/worker/pdf/pdftext"
)

// cp1252High is what Windows-1252 puts at 0x80-0x9F, in byte order; 0x81,
// 0x8D, 0x8F, 0x90 and 0x9D are undefined. 0xA0-0xFF are Latin-1.
const cp1252High = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"

func TestCP1252Table(t *testing.T) {
	f := loadFonts(t)
	want := map[rune]byte{}
	b := byte(0x80)
	for _, r := range cp1252High {
		for b == 0x81 || b == 0x8d || b == 0x8f || b == 0x90 || b == 0x9d {
			b++
		}
		want[r] = b
		b++
	}
	for r := rune(0xa0); r <= 0xff; r++ {
		want[r] = byte(r)
	}
	if !reflect.DeepEqual(f.cp1252, want) {
		t.Errorf("cp1252 table\n%v\nwant\n%v", f.cp1252, want)
	}
	// The table agrees with fpdf's translator, rune by rune.
	tr := fpdf.New("P", "mm", "A4", "").UnicodeTranslatorFromDescriptor("")
	for r, c := range f.cp1252 {
		if got := tr(string(r)); got != string([]byte{c}) {
			t.Errorf("fpdf translates %q to %q, table says %#x", r, got, c)
		}
	}
	// The TrueType fonts show all of cp1252: a document looks the same in
	// either face.
	for r := range f.cp1252 {
		if !f.covers(r) && r != 0xad { // the soft hyphen is never shown
			t.Errorf("the TrueType fonts lack cp1252's %q (U+%04X)", r, r)
		}
	}
	if _, err := cp1252Table(func(s string) string { return s }); err == nil {
		t.Error("a translator that does nothing was accepted")
	}
}

func TestCleanCP1252(t *testing.T) {
	f := loadFonts(t)
	for _, tc := range []struct {
		in, out string
		fits    bool
	}{
		{"plain ASCII", "plain ASCII", true},
		{"Café Müller – 5 € … “ok” ™ Œuvre Š", "Caf\xe9 M\xfcller \x96 5 \x80 \x85 \x93ok\x94 \x99 \x8cuvre \x8a", true},
		{"a\r\nb\tc\u0085d", "a b c d", true},
		{"zero\u200bwidth soft\u00adhyphen\ufeff", "zerowidth softhyphen", true},
		{"\x01nb\x01", " nb ", true},
		{"Łódź", "?\xf3d?", false},
		{"Москва", "??????", false},
		{"株 🎉", "? ?", false},
		{"bad\xffutf8", "bad?utf8", false},
		{"\ufffd", "?", false},           // shown by the TrueType fonts
		{"e\u0301 x\u20dd", "e x", true}, // marks the TrueType fonts lack are dropped in both faces
		{"nbsp\u00a0", "nbsp\xa0", true},
	} {
		out, exact := f.cleanCP1252(tc.in, false)
		if out != tc.out || exact != tc.fits {
			t.Errorf("cleanCP1252(%q) = %q, %v; want %q, %v", tc.in, out, exact, tc.out, tc.fits)
		}
		if got := f.fitsCP1252(tc.in); got != tc.fits {
			t.Errorf("fitsCP1252(%q) = %v", tc.in, got)
		}
	}
	if got, _ := f.cleanCP1252("a\r\nb\rc\nd", true); got != "a\nb\nc\nd" {
		t.Errorf("multiline: %q", got)
	}
}

// decodeCP1252 is the inverse of the cp1252 table.
func decodeCP1252(f *Fonts, s string) string {
	dec := map[byte]rune{}
	for r, c := range f.cp1252 {
		dec[c] = r
	}
	var b strings.Builder
	for i := range len(s) {
		if c := s[i]; c < 0x80 {
			b.WriteByte(c)
		} else {
			b.WriteRune(dec[c])
		}
	}
	return b.String()
}

// FuzzCleanCP1252 checks that the core face shows what the ttf face shows:
// when fitsCP1252 says a string fits, its cp1252 form is exact and decodes to
// clean's UTF-8; when it does not, the cp1252 form is not exact.
func FuzzCleanCP1252(f *testing.F) {
	for _, s := range []string{"", "Café Müller – 5 €", "Łódź", "a\r\nb\x00\u0085", "\u00ad\u200b", "e\u0301 x\u20dd", "\xff\xfe", "™…Ÿ\ufffd"} {
		f.Add(s)
	}
	fonts := loadFonts(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, multiline := range []bool{false, true} {
			out, exact := fonts.cleanCP1252(s, multiline)
			fits := fonts.fitsCP1252(s)
			if exact != fits {
				t.Fatalf("fitsCP1252(%q) = %v, but cleanCP1252 exact = %v", s, fits, exact)
			}
			if fits {
				if want := fonts.clean(s, multiline); decodeCP1252(fonts, out) != want {
					t.Fatalf("cleanCP1252(%q) = %q decodes to %q, clean gives %q", s, out, decodeCP1252(fonts, out), want)
				}
			}
			if strings.Contains(out, nbAlias) {
				t.Fatalf("cleanCP1252(%q) contains the page-count alias", s)
			}
		}
	})
}

func TestCleanCP1252Allocations(t *testing.T) {
	f := loadFonts(t)
	ascii, latin := "Copy paper A4, box of 5 reams (PO-000042)", "Café Müller – 5 €"
	if n := testing.AllocsPerRun(100, func() { _, _ = f.cleanCP1252(ascii, false) }); n != 0 {
		t.Errorf("cleanCP1252 of printable ASCII allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = f.fitsCP1252(latin) }); n != 0 {
		t.Errorf("fitsCP1252 allocates %v times", n)
	}
}

// fontsOf tells which face a rendered document is in.
func fontsOf(t *testing.T, doc []byte) string {
	t.Helper()
	core := bytes.Contains(doc, []byte("/BaseFont /Helvetica"))
	ttf := bytes.Contains(doc, []byte("/FontFile2"))
	switch {
	case core && !ttf:
		return "core"
	case ttf && !core:
		return "ttf"
	}
	t.Fatalf("document uses core fonts: %v, embedded fonts: %v", core, ttf)
	return ""
}

func latinInvoice() Invoice {
	inv := sampleInvoice()
	inv.VendorReference = "RÉF-2024/77"
	inv.Vendor = Party{Name: "Café Müller GmbH", Email: "billing@mueller.example", Address: "Hauptstraße 1\n12345 Köln"}
	inv.Payments[0].Reference = "SEPA – Überweisung 123"
	return inv
}

func latinReport() Report {
	return Report{
		TenantName:  "Øresund Bygg AB",
		Title:       "Daily report",
		Subtitle:    "2024-05-16",
		GeneratedAt: time.Date(2024, 5, 17, 2, 0, 0, 0, time.UTC),
		Summary:     []KeyValue{{"Orders", "3 – 1234.50 €"}},
		Sections: []ReportSection{{
			Title:      "Orders by vendor",
			Columns:    []string{"Vendor", "Currency", "Count", "Total"},
			RightAlign: []bool{false, false, true, true},
			Rows:       [][]string{{"Café Müller", "EUR", "2", "1000.00"}, {"Ñandú “Größe”", "EUR", "1", "234.50"}},
			Footer:     []string{"Total", "EUR", "3", "1234.50"},
		}},
	}
}

// renderAny renders a purchase order, an invoice or a report.
func renderAny(t *testing.T, doc any) []byte {
	t.Helper()
	switch v := doc.(type) {
	case PurchaseOrder:
		return render(t, v)
	case Invoice:
		return renderInvoice(t, v)
	case Report:
		return renderReport(t, v)
	}
	t.Fatalf("cannot render %T", doc)
	return nil
}

func TestRenderLatinUsesCoreFonts(t *testing.T) {
	po := samplePO()
	po.Vendor.Name = "Café Müller"
	po.Items[0].Description = "Crème brûlée – 12 × Ñandú"
	po.Notes = "Prix : 5 € — “Größe” L … ™"
	for name, tc := range map[string]struct {
		doc  any
		want []string
	}{
		"purchase order": {po, []string{"Café Müller", "Crème brûlée – 12 × Ñandú", "Prix : 5 € — “Größe” L … ™", "Office chair", "Page 1 of 1"}},
		"invoice":        {latinInvoice(), []string{"Café Müller GmbH", "Vendor reference: RÉF-2024/77", "12345 Köln", "SEPA – Überweisung 123", "Outstanding", "1034.50"}},
		"report":         {latinReport(), []string{"Øresund Bygg AB", "Daily report", "3 – 1234.50 €", "Café Müller", "Ñandú “Größe”", "1234.50"}},
	} {
		t.Run(name, func(t *testing.T) {
			doc := renderAny(t, tc.doc)
			if got := fontsOf(t, doc); got != "core" {
				t.Fatalf("rendered with %s fonts, want core", got)
			}
			if bytes.Contains(doc, []byte("/FontFile2")) || bytes.Contains(doc, []byte("/ToUnicode")) {
				t.Error("a Latin-1 document embeds fonts")
			}
			wantLines(t, extractLines(t, doc), tc.want...)
		})
	}
}

func TestRenderUnicodeUsesTTF(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(po *PurchaseOrder)
		want string
	}{
		"tenant":      {func(po *PurchaseOrder) { po.TenantName = "Łódź Logistics" }, "Łódź Logistics"},
		"vendor":      {func(po *PurchaseOrder) { po.Vendor.Name = "Москва Supplies" }, "Москва Supplies"},
		"description": {func(po *PurchaseOrder) { po.Items[2].Description = "Café Łódź" }, "Café Łódź"},
		"notes":       {func(po *PurchaseOrder) { po.Notes = "Αθήνα" }, "Αθήνα"},
	} {
		t.Run(name, func(t *testing.T) {
			po := samplePO()
			tc.set(&po)
			doc := render(t, po)
			if got := fontsOf(t, doc); got != "ttf" {
				t.Fatalf("rendered with %s fonts, want ttf", got)
			}
			// Latin-1 text is still right in the ttf face.
			wantLines(t, extractLines(t, doc), tc.want, "Copy paper A4, 80 g/m², box of 5 reams", "Page 1 of 1")
		})
	}
}

// Every printable character of cp1252 survives the core face: rendered
// with Helvetica, extracted as the same text.
func TestRenderCP1252Repertoire(t *testing.T) {
	f := loadFonts(t)
	var all []rune
	for r := rune(0x20); r < 0x7f; r++ {
		all = append(all, r)
	}
	for r := range f.cp1252 {
		if r != 0xad { // soft hyphen: invisible, dropped
			all = append(all, r)
		}
	}
	slices.Sort(all)
	var notes strings.Builder
	for i, r := range all {
		if i%12 == 0 {
			notes.WriteByte('\n')
		}
		notes.WriteRune(r)
	}
	po := samplePO()
	po.Notes = notes.String()
	doc := render(t, po)
	if got := fontsOf(t, doc); got != "core" {
		t.Fatalf("rendered with %s fonts, want core", got)
	}
	text, err := pdftext.Extract(doc)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(notes.String()), "\n") {
		if l := strings.TrimRight(line, " "); !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("text lacks line %q", l)
		}
	}
}

func TestRenderLatinLongFieldsFit(t *testing.T) {
	po := samplePO()
	po.Vendor.Name = strings.Repeat("É", 5000)
	lines := extractLines(t, render(t, po))
	var vendor string
	for _, l := range lines {
		if strings.HasPrefix(l, "ÉÉÉ") {
			vendor = l
		}
	}
	if !strings.HasSuffix(vendor, "...") || utf8.RuneCountInString(vendor) > 100 || strings.Trim(vendor, "É.") != "" {
		t.Errorf("vendor name not shortened to its cell: %q", vendor)
	}
	// A word longer than its column is cut between characters, none lost.
	r := latinReport()
	r.Sections[0].Rows[0][0] = strings.Repeat("€", 400)
	doc := renderReport(t, r)
	if got := fontsOf(t, doc); got != "core" {
		t.Fatalf("rendered with %s fonts, want core", got)
	}
	n := 0
	for _, l := range extractLines(t, doc) {
		if l != "" && strings.Trim(l, "€") == "" {
			n += utf8.RuneCountInString(l)
		}
	}
	if n != 400 {
		t.Errorf("broken long word kept %d of 400 characters", n)
	}
}

// stringFields calls fn with every exported string of v (a pointer), in
// structs, slices and slices of slices, by its path.
func stringFields(v reflect.Value, path string, fn func(path string, s reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		stringFields(v.Elem(), path, fn)
	case reflect.String:
		fn(path, v)
	case reflect.Slice:
		for i := range v.Len() {
			stringFields(v.Index(i), path+"["+string(rune('0'+i%10))+"]", fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if sf := v.Type().Field(i); sf.IsExported() {
				stringFields(v.Field(i), path+"."+sf.Name, fn)
			}
		}
	}
}

// Every string field of the documents counts in the choice of the face: a
// layout that shows a field its texts do not list would fall back to a
// second render (see TestRenderUnlistedTextFallsBackToTTF).
func TestFaceForSeesEveryField(t *testing.T) {
	f := loadFonts(t)
	po, inv, rep := samplePO(), latinInvoice(), latinReport()
	for name, tc := range map[string]struct {
		doc   any
		texts func() iter.Seq[string]
	}{
		"PurchaseOrder": {&po, func() iter.Seq[string] { return po.texts }},
		"Invoice":       {&inv, func() iter.Seq[string] { return inv.texts }},
		"Report":        {&rep, func() iter.Seq[string] { return rep.texts }},
	} {
		if got := f.faceFor(tc.texts()); got != &f.core {
			t.Errorf("%s: the Latin-1 sample is in the %s face", name, got.name)
			continue
		}
		fields := 0
		stringFields(reflect.ValueOf(tc.doc), name, func(path string, s reflect.Value) {
			fields++
			old := s.String()
			s.SetString(old + " Łódź")
			if got := f.faceFor(tc.texts()); got != &f.ttf {
				t.Errorf("%s: Łódź does not make the document ttf", path)
			}
			s.SetString(old)
		})
		if fields < 10 {
			t.Errorf("%s: only %d string fields visited", name, fields)
		}
	}
}

func TestRenderUnlistedTextFallsBackToTTF(t *testing.T) {
	f := loadFonts(t)
	for _, tc := range []struct{ text, face string }{{"Café", "core"}, {"Москва", "ttf"}} {
		var buf bytes.Buffer
		body := func(_ context.Context, d *document) error {
			d.font("", 10)
			d.cell(0, 6, tc.text, 1, "L")
			return nil
		}
		none := func(func(string) bool) {}
		if err := f.render(context.Background(), &buf, docInfo{what: "test", tenant: "Acme", title: "Test"}, none, body); err != nil {
			t.Fatal(err)
		}
		if got := fontsOf(t, buf.Bytes()); got != tc.face {
			t.Errorf("%q rendered with %s fonts, want %s", tc.text, got, tc.face)
		}
		wantLines(t, extractLines(t, buf.Bytes()), tc.text, "Acme", "Test")
	}
}

// BenchmarkFaceFor measures choosing the face of a one-page order.
func BenchmarkFaceFor(b *testing.B) {
	f := loadFonts(b)
	po := benchPO()
	b.ReportAllocs()
	for b.Loop() {
		if f.faceFor(po.texts) != &f.core {
			b.Fatal("not core")
		}
	}
}
