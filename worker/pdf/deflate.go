package pdf

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"

	"codeberg.org/go-pdf/fpdf"
)

// Page contents are compressed here, not by fpdf.
//
// fpdf deflates each stream with a zlib writer of its own (zlib.NewWriterLevel
// per stream), and a flate compressor is about 1.2 MB of tables to allocate
// and clear: for a one-page order that was 89 % of the bytes allocated and
// more than half of the CPU time of a render, GC included. So documents are
// laid out with fpdf's compression off, and deflateStreams compresses their
// plain streams afterwards with pooled writers (Reset gives the same output as
// a new writer, so documents stay byte-for-byte deterministic).

// zlibWriters holds zlib writers at fpdf's level (BestSpeed).
var zlibWriters = sync.Pool{New: func() any {
	zw, err := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed)
	if err != nil {
		panic(fmt.Sprintf("pdf: zlib writer: %v", err)) // only for an invalid level
	}
	return zw
}}

// docBuffers holds the buffers documents are laid out into before they are
// deflated; maxPooledDoc keeps an occasional large report's buffer out.
var docBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledDoc = 1 << 20

func getBuffer() *bytes.Buffer {
	b := docBuffers.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledDoc {
		docBuffers.Put(b)
	}
}

// writePDF writes the finished document p to w, its plain streams deflated.
func writePDF(w io.Writer, p *fpdf.Fpdf) error {
	raw := getBuffer()
	defer putBuffer(raw)
	if err := p.Output(raw); err != nil {
		return err
	}
	return deflateStreams(w, raw.Bytes())
}

// deflateStreams writes doc, a PDF as fpdf writes it, to w with every stream
// whose dictionary is exactly "<</Length n>>" (page contents, when fpdf's
// compression is off) deflated, and the cross-reference table rewritten for
// the new offsets. Every other object is copied as it is.
//
// A document that does not have fpdf's layout (a classic xref table of
// 20-byte entries, one "N 0 obj" at each offset) is written unchanged: it is
// a valid PDF, only larger.
func deflateStreams(w io.Writer, doc []byte) error {
	l, ok := parseLayout(doc)
	if !ok {
		_, err := w.Write(doc)
		return err
	}
	out, z := getBuffer(), getBuffer()
	defer putBuffer(out)
	defer putBuffer(z)
	out.Grow(len(doc) / 2)
	out.Write(doc[:l.objs[0].off])
	newOff := make([]int, l.size)
	zw := zlibWriters.Get().(*zlib.Writer)
	defer func() {
		zw.Reset(io.Discard) // drop the reference to z
		zlibWriters.Put(zw)
	}()
	for i, o := range l.objs {
		newOff[o.num] = out.Len()
		obj := l.object(doc, i)
		head, data, tail, ok := plainStream(obj, o.num)
		if !ok {
			out.Write(obj)
			continue
		}
		z.Reset()
		zw.Reset(z)
		if _, err := zw.Write(data); err != nil {
			return fmt.Errorf("pdf: deflate object %d: %w", o.num, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("pdf: deflate object %d: %w", o.num, err)
		}
		out.Write(head)
		out.WriteString("<</Filter /FlateDecode /Length ")
		out.WriteString(strconv.Itoa(z.Len()))
		out.WriteString(">>\nstream\n")
		out.Write(z.Bytes())
		out.Write(tail)
	}
	xref := out.Len()
	fmt.Fprintf(out, "xref\n0 %d\n0000000000 65535 f \n", l.size)
	for num := 1; num < len(newOff); num++ {
		fmt.Fprintf(out, "%010d 00000 n \n", newOff[num])
	}
	out.Write(doc[l.trailer:l.startxref])
	fmt.Fprintf(out, "startxref\n%d\n%%%%EOF\n", xref)
	_, err := w.Write(out.Bytes())
	return err
}

// layout is where a document's objects and cross-reference table are.
type layout struct {
	objs      []object // in file order
	size      int      // entries of the table (objects + the free entry 0)
	xref      int      // offset of "xref"
	trailer   int      // offset of "trailer", after the table
	startxref int      // offset of "startxref"
}

type object struct{ num, off int }

// object returns the bytes of the i-th object in file order: from its
// offset to the next object's, or to the table.
func (l layout) object(doc []byte, i int) []byte {
	end := l.xref
	if i+1 < len(l.objs) {
		end = l.objs[i+1].off
	}
	return doc[l.objs[i].off:end]
}

// xrefEntry is one in-use entry of fpdf's table: "%010d 00000 n \n".
const xrefEntry = 20

// parseLayout reads doc's cross-reference table and checks that each entry
// points at its "N 0 obj" and that the objects tile the body.
func parseLayout(doc []byte) (layout, bool) {
	var l layout
	l.startxref = bytes.LastIndex(doc, []byte("startxref\n"))
	if l.startxref < 0 {
		return l, false
	}
	num, ok := lineInt(doc[l.startxref+len("startxref\n"):])
	if !ok || num < 0 || num >= l.startxref {
		return l, false
	}
	l.xref = num
	rest := doc[l.xref:l.startxref]
	var n int
	if !bytes.HasPrefix(rest, []byte("xref\n0 ")) {
		return l, false
	}
	rest = rest[len("xref\n0 "):]
	if n, ok = lineInt(rest); !ok || n < 2 {
		return l, false
	}
	rest = rest[bytes.IndexByte(rest, '\n')+1:]
	if !bytes.HasPrefix(rest, []byte("0000000000 65535 f \n")) || len(rest) < n*xrefEntry {
		return l, false
	}
	l.size = n
	l.objs = make([]object, 0, n-1)
	for i := 1; i < n; i++ {
		e := rest[i*xrefEntry : (i+1)*xrefEntry]
		if !bytes.HasSuffix(e, []byte(" 00000 n \n")) {
			return l, false
		}
		off, err := strconv.Atoi(string(e[:10]))
		if err != nil || off <= 0 || off >= l.xref {
			return l, false
		}
		if !bytes.HasPrefix(doc[off:], []byte(strconv.Itoa(i)+" 0 obj\n")) {
			return l, false
		}
		l.objs = append(l.objs, object{num: i, off: off})
	}
	rest = rest[n*xrefEntry:]
	if !bytes.HasPrefix(rest, []byte("trailer\n")) {
		return l, false
	}
	l.trailer = l.startxref - len(rest)
	slices.SortFunc(l.objs, func(a, b object) int { return a.off - b.off })
	for i := 1; i < len(l.objs); i++ {
		if l.objs[i].off == l.objs[i-1].off {
			return l, false
		}
	}
	// The last object must end with its "endobj" right before the table.
	if !bytes.HasSuffix(doc[:l.xref], []byte("endobj\n")) {
		return l, false
	}
	return l, true
}

// plainStream splits obj, object num, into its header line, the data of its
// stream and what follows the data, if obj is exactly
// "num 0 obj\n<</Length n>>\nstream\n<n bytes>\nendstream\nendobj\n".
func plainStream(obj []byte, num int) (head, data, tail []byte, ok bool) {
	h := len(strconv.Itoa(num)) + len(" 0 obj\n")
	rest, found := bytes.CutPrefix(obj[h:], []byte("<</Length "))
	if !found {
		return nil, nil, nil, false
	}
	n, ok := intBefore(rest, ">>\nstream\n")
	if !ok {
		return nil, nil, nil, false
	}
	start := len(obj) - len(rest) + len(strconv.Itoa(n)) + len(">>\nstream\n")
	const end = "\nendstream\nendobj\n"
	if n < 0 || start+n+len(end) != len(obj) || string(obj[start+n:]) != end {
		return nil, nil, nil, false
	}
	return obj[:h], obj[start : start+n], obj[start+n:], true
}

// lineInt parses the decimal integer that b starts with, up to a newline.
func lineInt(b []byte) (int, bool) { return intBefore(b, "\n") }

// intBefore parses the decimal integer that b starts with, when sep follows
// it.
func intBefore(b []byte, sep string) (int, bool) {
	i := 0
	for i < len(b) && i < 12 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || !bytes.HasPrefix(b[i:], []byte(sep)) {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[:i]))
	return n, err == nil
}
