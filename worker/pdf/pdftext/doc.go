// Package pdftext is a small test-support text extractor for PDFs produced by
// iacc (worker/pdf, built on fpdf with the core fonts).
//
// It is not a PDF parser: Extract scans the file for every
// "stream ... endstream" object, inflates FlateDecode streams, tokenises the
// result as a content stream and returns the strings shown by the Tj, TJ, '
// and " operators, one text run per line. Literal strings (with their
// escapes) and hex strings are decoded; bytes are read as WinAnsiEncoding
// (cp1252, what fpdf's core fonts use) and strings that start with a UTF-16BE
// byte-order mark as UTF-16BE. Font programs, images, cross-reference and
// object streams are skipped. There is no support for encryption, object
// streams' contents, font encodings with Differences/ToUnicode maps, or text
// positioning: a word split over two runs comes out on two lines.
//
// Use it in tests to assert what a rendered document says; it must not be
// used on untrusted input in production code paths, although it is fuzzed to
// never panic and to bound how much it inflates.
package pdftext
