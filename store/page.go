package store

// Page selects a window of a list; Number counts from 1.
type Page struct {
	Number int
	Size   int
}

// Limit is the SQL LIMIT of the page.
func (p Page) Limit() int {
	if p.Size <= 0 {
		return 50
	}
	return p.Size
}

// Offset is the SQL OFFSET of the page.
func (p Page) Offset() int {
	if p.Number <= 1 {
		return 0
	}
	return (p.Number - 1) * p.Limit()
}
