// Package migrations holds the schema of each SQL dialect as numbered,
// forward-only migration files, embedded into the binary.
//
// Files are named NNNN_description.up.sql, one folder per dialect
// (postgres, sqlite). The two folders describe the same schema and change
// together: a migration added to one is added to the other with the same
// number in the same change.
package migrations

import "embed"

// FS holds postgres/*.up.sql and sqlite/*.up.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
