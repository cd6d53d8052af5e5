package pdf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

func loadFonts(t testing.TB) *Fonts {
	t.Helper()
	f, err := LoadFonts()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFontsCoverage(t *testing.T) {
	f := loadFonts(t)
	for _, r := range "AZaz09 Café Müller Łódź Ελληνικά Москва €–×²…“”ßØñ�" {
		if !f.covers(r) {
			t.Errorf("fonts do not cover %q (U+%04X)", r, r)
		}
	}
	for _, r := range []rune{'株', 0x1F389, 0xE000, -1, 0x110000, '\n', 0} {
		if f.covers(r) {
			t.Errorf("fonts claim to cover U+%04X", r)
		}
	}
}

func TestFontsClean(t *testing.T) {
	f := loadFonts(t)
	for _, tc := range []struct{ in, line, multi string }{
		{"plain ASCII", "plain ASCII", "plain ASCII"},
		{"Ελληνικά Москва", "Ελληνικά Москва", "Ελληνικά Москва"},
		{"a\r\nb\rc\nd", "a b c d", "a\nb\nc\nd"},
		{"tab\there\x00\x1b\x7f\u0085", "tab here    ", "tab here    "},
		{"株 🎉", "� �", "� �"},
		{"bad\xffutf8\xe2\x82", "bad�utf8��", "bad�utf8��"},
		{"zero\u200bwidth\ufeff soft\u00adhyphen", "zerowidth softhyphen", "zerowidth softhyphen"},
		{"\x01nb\x01", " nb ", " nb "}, // the page-count alias cannot survive
	} {
		if got := f.clean(tc.in, false); got != tc.line {
			t.Errorf("clean(%q, false) = %q, want %q", tc.in, got, tc.line)
		}
		if got := f.clean(tc.in, true); got != tc.multi {
			t.Errorf("clean(%q, true) = %q, want %q", tc.in, got, tc.multi)
		}
	}
}

func TestFontsCleanASCIIDoesNotAllocate(t *testing.T) {
	f := loadFonts(t)
	s := "Copy paper A4, box of 5 reams (PO-000042)"
	if n := testing.AllocsPerRun(100, func() { _ = f.clean(s, false) }); n != 0 {
		t.Errorf("clean of printable ASCII allocates %v times", n)
	}
}

func TestCmapCoverageRejectsNonFonts(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("not a font"), goregular.TTF[:64], bytes.Repeat([]byte{0xff}, 300)} {
		if _, err := cmapCoverage(in); !errors.Is(err, errFontFormat) {
			t.Errorf("cmapCoverage(%q...) err = %v", in[:min(len(in), 8)], err)
		}
	}
}

// Renders share one Fonts, its cp1252 table and the gofont byte slices: fpdf
// must neither race on them nor modify them (run with -race).
func TestRenderConcurrentSharedFonts(t *testing.T) {
	f := loadFonts(t)
	sums := [2][32]byte{sha256.Sum256(goregular.TTF), sha256.Sum256(gobold.TTF)}
	latin := samplePO()
	latin.Vendor.Name = "Café Müller – 5 €"
	unicode := samplePO()
	unicode.Vendor.Name = "Ελληνικά Москва Łódź"
	pos := []PurchaseOrder{latin, unicode}
	var want [2]bytes.Buffer
	for i, po := range pos {
		if err := f.RenderPurchaseOrder(context.Background(), &want[i], po); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Go(func() {
			for j := range 4 {
				i := (g + j) % 2
				var buf bytes.Buffer
				if err := f.RenderPurchaseOrder(context.Background(), &buf, pos[i]); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf.Bytes(), want[i].Bytes()) {
					errs <- errors.New("concurrent render differs")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if sha256.Sum256(goregular.TTF) != sums[0] || sha256.Sum256(gobold.TTF) != sums[1] {
		t.Error("rendering modified the font data")
	}
}
