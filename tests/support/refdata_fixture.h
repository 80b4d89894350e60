/* The suite database with the full real reference data, for API suites. */
#ifndef FS_TEST_REFDATA_FIXTURE_H
#define FS_TEST_REFDATA_FIXTURE_H

#include "tests/support/harness.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* A blocking connection to DATABASE_URL (fails the test when it cannot connect). */
PGconn *fs_test_db(void);
/* Runs a statement that must succeed. */
void fs_test_exec(PGconn *c, const char *sql);
/* The first column of the first row as a number. */
long fs_test_scalar(PGconn *c, const char *sql);
/* Migrates, seeds and imports the real OurAirports/OpenFlights files into the public schema
 * once (idempotent, under an advisory lock), and adds the test airports ZZR (active) and ZZQ
 * (inactive). */
void fs_test_ensure_reference_data(void);
/* Ensures the data, starts the server and waits until its workers have loaded it. */
void fs_test_start_refdata_server(fs_test_server_t *srv, int workers, const char *const *env);

/* An access token signed with `secret` for a user (created if needed) that is or is not an
 * administrator. Caller frees. */
char *fs_test_token(const char *email, bool admin, const char *secret);

#endif
