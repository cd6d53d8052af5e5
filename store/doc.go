// Package store is iacc's MySQL layer: one file per table or aggregate,
// hand-written SQL that runs on MySQL 8 and MariaDB 10.11 alike, and the
// embedded goose migrations in migrations/.
//
// Every function takes a context and a [Querier], which both *sql.DB and
// *sql.Tx satisfy, so callers compose several calls into one transaction
// with [DB.InTx]:
//
//	err := db.InTx(ctx, func(tx *sql.Tx) error {
//		po, err := store.CreatePurchaseOrder(ctx, tx, in)
//		...
//	})
//
// Money is DECIMAL(14,2) in SQL and decimal.Decimal in Go. Times are UTC
// DATETIME(6). A missing row is a wrapped [ErrNotFound]; a duplicate key is a
// wrapped [ErrConflict]. Only this package imports the MySQL driver, and it
// imports nothing else of iacc's.
package store
