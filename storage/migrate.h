/* Schema migrations: `DIR/NNN_name.sql` files applied in numeric order.
 *
 * Each file runs in its own transaction together with its row in
 * schema_migrations(version int primary key, name text, applied_at timestamptz), so a file is
 * either applied and recorded or not at all. The whole run holds a session-level
 * pg_advisory_lock (FS_MIGRATE_LOCK_KEY), so processes migrating at the same time (several
 * hosts starting at once) apply each file exactly once. These calls block: use them from the
 * command line or at start, before the event loop runs. Conventions: docs/STORAGE.md.
 */
#ifndef FS_MIGRATE_H
#define FS_MIGRATE_H

#include <libpq-fe.h>
#include <stdio.h>

/* pg_advisory_lock key taken for a migration run ("FSMIGRAT" in ASCII). */
#define FS_MIGRATE_LOCK_KEY 0x46534d4947524154LL

/* Applies the pending migrations of `dir`. `applied` (may be NULL) gets the number of files
 * applied by this call. Returns 0, or -1 with *err (caller frees; `err` may be NULL, the
 * message is then logged) naming the file and the server's message; the failing file is
 * rolled back, files before it stay applied. */
int fs_migrate_run(PGconn *conn, const char *dir, int *applied, char **err);

/* Writes one line per migration ("applied <time>" or "pending"), plus recorded versions
 * whose file is missing. Returns 0, or -1 when the directory or the table cannot be read. */
int fs_migrate_status(PGconn *conn, const char *dir, FILE *out);

/* The migrations directory: $FLIGHTSHARK_MIGRATIONS_DIR, else
 * storage/migrations of the source tree this binary was built from. */
const char *fs_migrate_default_dir(void);

#endif
