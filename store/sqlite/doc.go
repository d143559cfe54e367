// Package sqlite owns taskpulse's SQLite adapter of store.Store: the
// connection pools, the pragmas, the embedded schema migrations and the SQL
// behind every Store method. It uses modernc.org/sqlite (pure Go, no cgo).
//
// SQLite allows one writer at a time. Rather than letting several pooled
// connections race for the write lock (and fail with SQLITE_BUSY, or
// deadlock when two deferred transactions both try to upgrade), every write
// goes through a pool of exactly one connection, so writers queue in Go and
// honour their contexts while waiting. Its transactions still BEGIN
// IMMEDIATE, which takes the write lock up front: another process on the
// same file (the `taskpulse user add` command beside a running server) then
// waits under busy_timeout instead of failing half-way. Reads go through a
// separate pool of query-only connections that, in WAL mode, run beside the
// writer and see the last committed state. ":memory:" is the exception: one
// connection serves reads and writes, because a plain in-memory database
// exists per connection and a shared-cache one fails its readers with
// SQLITE_LOCKED while a write is in progress.
//
// Read (read.go) runs fn in one read transaction on the reader pool (on
// ":memory:", on its one connection): in WAL mode the transaction's snapshot
// is fixed by its first read, which is the read of log_head, so the head
// and every later read see the same committed state, and the single writer
// commits each unit's changes and entries at once.
//
// Update (update.go) runs a unit of work as one such write transaction: the
// Tx it hands out is a Store whose write, read and rq run directly in that
// transaction, so every method runs there unchanged and sees its writes.
// The single writer also orders the log: a unit that appended entries
// moves log_head and inserts them as its last statements, and the next
// unit cannot begin before it commits, in this process (one writer
// connection) or another (BEGIN IMMEDIATE), so seq order is commit order.
//
// Every statement is prepared once, when the store opens (stmtcache.go), and
// timestamps are stored as integer microseconds, so they round-trip exactly.
package sqlite
