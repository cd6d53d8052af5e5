// Package pdftext is a small test-support text extractor for PDFs produced by
// iacc (worker/pdf, built on fpdf: documents of cp1252 text in the core
// Helvetica fonts, the others in embedded UTF-8 TrueType fonts).
//
// It is not a PDF parser: Extract scans the file for every
// "stream ... endstream" object, inflates FlateDecode streams, tokenises the
// result as a content stream and returns the strings shown by the Tj, TJ, '
// and " operators, one text run per line. Literal strings (with their
// escapes) and hex strings are decoded.
//
// Fonts with a /ToUnicode CMap (fpdf writes its UTF-8 fonts as Identity-H
// CID fonts with one) are followed: a scan of the file's dictionaries finds
// the font resource names (/Font << /Fxx 5 0 R >>), each font's /ToUnicode
// stream, and the CMaps' codespace ranges and bfchar and bfrange mappings;
// the content streams' Tf operators (with q and Q) say which font a string is
// shown in. Strings in fonts without a ToUnicode map are read as
// WinAnsiEncoding (cp1252, fpdf's core fonts), or as UTF-16BE when they start
// with a byte-order mark.
//
// Font programs, CIDToGIDMaps, images, cross-reference and object streams
// are skipped. There is no support for encryption, object streams' contents,
// font encodings with /Differences, per-page resource scoping (font names
// are looked up file-wide), or text positioning: a word split over two runs
// comes out on two lines.
//
// Use it in tests to assert what a rendered document says; it must not be
// used on untrusted input in production code paths, although it is fuzzed to
// never panic and to bound how much it inflates.
package pdftext
