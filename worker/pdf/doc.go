// Package pdf handles pdf:render: it renders a document (a purchase order, an
// invoice or a tenant's daily report) with fpdf, stores it in the blob store
// under a key that names the document's version, and records it in the
// documents table. Rendering the same version again finds the record and
// does nothing.
//
// The layouts (RenderPurchaseOrder, RenderInvoice and RenderReport) share one
// frame: the tenant's name and the document's title at the top of every page,
// "Page N of M" at the bottom, tables whose header row repeats on every page
// they span. Text is UTF-8. A document whose text is all in cp1252 (Latin-1,
// € – “ ” …) is shown in the PDF core font Helvetica, which costs nothing to
// embed; any other document embeds the Go fonts
// (golang.org/x/image/font/gofont) as subsets with a ToUnicode map, which is
// several times slower to render. Fonts says which documents get which and
// what replaces the characters neither can show. Rendering is deterministic:
// the same input gives the same bytes.
package pdf
