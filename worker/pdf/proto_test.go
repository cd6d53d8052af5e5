package pdf

import (
	"bytes"
	"testing"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

func BenchmarkProtoAddFont(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p := fpdf.New("P", "mm", "A4", "")
		p.AliasNbPages("")
		p.AddUTF8FontFromBytes("go", "", goregular.TTF)
		p.AddUTF8FontFromBytes("go", "B", gobold.TTF)
	}
}

func BenchmarkProtoDoc(b *testing.B) {
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		p := fpdf.New("P", "mm", "A4", "")
		p.SetCompression(true)
		p.AliasNbPages("")
		p.AddUTF8FontFromBytes("go", "", goregular.TTF)
		p.AddUTF8FontFromBytes("go", "B", gobold.TTF)
		p.AddPage()
		p.SetFont("go", "", 10)
		p.CellFormat(0, 5, "Hello Café Müller Łódź Ελληνικά Москва € 0123456789", "", 1, "L", false, 0, "")
		p.SetFont("go", "B", 10)
		p.CellFormat(0, 5, "Hello Page 1 of {nb}", "", 1, "L", false, 0, "")
		if err := p.Output(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("size %d", buf.Len())
}
