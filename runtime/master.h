/* The master process of `flightshark serve`.
 *
 * It owns no request traffic. It opens one SO_REUSEPORT listening socket per worker slot
 * (as nginx does) and keeps it open for the life of the server, forks one worker per slot,
 * and when a worker dies forks a replacement into the same slot (exponential backoff), so
 * connections queued on that slot's socket wait for the replacement instead of being reset.
 * SIGTERM/SIGINT: workers drain (stop accepting, finish in-flight requests within
 * SHUTDOWN_TIMEOUT_MS) and the master exits when they have. SIGHUP: configuration is reloaded
 * and workers are replaced one slot at a time (the new worker starts before the old one drains),
 * so a reload drops no connection. Workers reach each other through the master (peer hub).
 */
#ifndef FS_MASTER_H
#define FS_MASTER_H

/* Re-reads the configuration into fs_cfg on SIGHUP; returns 0, or -1 to keep the old one. */
typedef int (*fs_master_reload_fn)(void);

/* Runs until shutdown; returns the process exit code. fs_cfg must be loaded and valid. */
int fs_master_run(fs_master_reload_fn reload);

#endif
