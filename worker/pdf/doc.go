// Package pdf handles pdf:render: it renders a document (a purchase order
// now) with fpdf, stores it in the blob store under a key that names the
// document's version, and records it in the documents table. Rendering the
// same version again finds the record and does nothing.
package pdf
