package pdftext

import (
	"bytes"
	"strconv"
)

// objects is what Extract needs to know about a file's (non-stream)
// dictionaries to decode text in fonts with a ToUnicode CMap.
type objects struct {
	fontRes      map[string]int // font resource name (without "/") -> font object
	toUnicode    map[int]int    // font object -> its ToUnicode CMap object
	toUnicodeObj map[int]bool   // objects that are ToUnicode CMaps
	notText      map[int]bool   // font programs and CIDToGIDMaps: binary, never text
}

// scanObjects reads the dictionaries of every "N G obj ... endobj" in b (up
// to "stream" for stream objects). It is a scan, not a parse: names of font
// resources from all resource dictionaries go into one map, which is enough
// for files whose fonts have one name each (what fpdf writes).
func scanObjects(b []byte) objects {
	o := objects{fontRes: map[string]int{}, toUnicode: map[int]int{}, toUnicodeObj: map[int]bool{}, notText: map[int]bool{}}
	type header struct{ num, start, body int }
	var hs []header
	for pos := 0; pos < len(b); {
		k := bytes.Index(b[pos:], kwObj)
		if k < 0 {
			break
		}
		k += pos
		pos = k + len(kwObj)
		if num, start, ok := objHeader(b, k); ok {
			hs = append(hs, header{num: num, start: start, body: k + len(kwObj)})
		}
	}
	for i, h := range hs {
		end := len(b)
		if i+1 < len(hs) {
			end = max(hs[i+1].start, h.body)
		}
		body := b[h.body:end]
		if e := bytes.Index(body, []byte("endobj")); e >= 0 {
			body = body[:e]
		}
		if e := bytes.Index(body, kwStream); e >= 0 {
			body = body[:e]
		}
		o.scanDict(h.num, body)
	}
	return o
}

func (o *objects) scanDict(num int, dict []byte) {
	for _, ref := range keyRefs(dict, "/ToUnicode") {
		o.toUnicode[num] = ref
		o.toUnicodeObj[ref] = true
	}
	for _, key := range [...]string{"/CIDToGIDMap", "/FontFile", "/FontFile2", "/FontFile3"} {
		for _, ref := range keyRefs(dict, key) {
			o.notText[ref] = true
		}
	}
	// Font resource dictionaries: /Font << /F1 5 0 R /F2 7 0 R >>.
	for _, i := range keyIndexes(dict, "/Font") {
		rest := bytes.TrimLeft(dict[i+len("/Font"):], " \t\r\n\f\x00")
		if !bytes.HasPrefix(rest, []byte("<<")) {
			continue // "/Type /Font"
		}
		rest = rest[2:]
		for {
			rest = bytes.TrimLeft(rest, " \t\r\n\f\x00")
			if len(rest) == 0 || rest[0] != '/' {
				break
			}
			j := 1
			for j < len(rest) && isRegular(rest[j]) {
				j++
			}
			name := string(rest[1:j])
			ref, n, ok := parseRef(rest[j:])
			if !ok {
				break
			}
			o.fontRes[name] = ref
			rest = rest[j+n:]
		}
	}
}

// keyIndexes returns where key occurs in dict as a whole name.
func keyIndexes(dict []byte, key string) []int {
	var out []int
	for off := 0; off < len(dict); {
		i := indexKey(dict[off:], key)
		if i < 0 {
			break
		}
		out = append(out, off+i)
		off += i + len(key)
	}
	return out
}

// keyRefs returns the objects referred to by key ("/Key 12 0 R") in dict.
func keyRefs(dict []byte, key string) []int {
	var out []int
	for _, i := range keyIndexes(dict, key) {
		if ref, _, ok := parseRef(dict[i+len(key):]); ok {
			out = append(out, ref)
		}
	}
	return out
}

// parseRef parses an indirect reference "12 0 R" (after white space) at the
// start of b; it returns the object number and the bytes consumed.
func parseRef(b []byte) (num, n int, ok bool) {
	i := 0
	skip := func() {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
	}
	digits := func() (int, bool) {
		j := i
		for i < len(b) && i-j < 10 && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j || (i < len(b) && b[i] >= '0' && b[i] <= '9') {
			return 0, false
		}
		v, err := strconv.Atoi(string(b[j:i]))
		return v, err == nil
	}
	skip()
	num, ok = digits()
	if !ok {
		return 0, 0, false
	}
	skip()
	if _, ok := digits(); !ok {
		return 0, 0, false
	}
	skip()
	if i >= len(b) || b[i] != 'R' || (i+1 < len(b) && isRegular(b[i+1])) {
		return 0, 0, false
	}
	return num, i + 1, true
}

// objHeader reports whether the "obj" keyword at b[k:] ends an object
// header "N G obj"; it returns N and where the header starts.
func objHeader(b []byte, k int) (num, start int, ok bool) {
	if k < 0 || k+len(kwObj) > len(b) || !bytes.Equal(b[k:k+len(kwObj)], kwObj) {
		return 0, 0, false
	}
	if end := k + len(kwObj); end < len(b) && isRegular(b[end]) {
		return 0, 0, false // "objx"
	}
	j := k
	back := func(pred func(byte) bool, limit int) bool {
		e := j
		for j > 0 && pred(b[j-1]) && e-j < limit {
			j--
		}
		return j < e
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	if !back(isSpace, 64) || !back(isDigit, 5) || !back(isSpace, 64) {
		return 0, 0, false
	}
	e := j
	if !back(isDigit, 10) || (j > 0 && isRegular(b[j-1])) {
		return 0, 0, false
	}
	num, err := strconv.Atoi(string(b[j:e]))
	if err != nil {
		return 0, 0, false
	}
	return num, j, true
}
