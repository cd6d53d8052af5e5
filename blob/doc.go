// Package blob stores rendered files (PDFs, CSVs) by key. [Dir] keeps them in
// a local directory; other backends (S3-compatible storage) implement the
// same [Store] interface. Keys are slash-separated relative paths chosen by
// the caller, deterministic per document version, so writing the same key
// twice leaves one file. Writes are atomic: a reader never sees half a file;
// and durable: once Put returns, the file and its name survive a crash.
//
// It imports nothing of iacc's.
package blob
