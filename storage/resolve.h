/* Host names to IP literals, once, at start.
 *
 * libpq and hiredis 0.14 both resolve names with a blocking getaddrinfo when they connect,
 * which would stall a worker's loop; so DATABASE_URL and REDIS_URL hosts are resolved here
 * when the clients are created, and the clients connect by address. */
#ifndef FS_RESOLVE_H
#define FS_RESOLVE_H

/* `host` itself when it is an IPv4/IPv6 literal, else its first address (blocking lookup).
 * Returns a new string, or NULL with *err = "cannot resolve <what> host '<host>': <reason>". */
char *fs_resolve_ip(const char *host, const char *what, char **err);

#endif
