/* flightshark user: account administration from the command line (docs/ACCOUNTS.md).
 *
 *   user create [--admin] EMAIL   the password is read from stdin (first line), or prompted
 *                                 twice without echo when stdin is a terminal
 *   user promote EMAIL            grant is_admin
 *   user demote EMAIL             revoke is_admin
 *   user deactivate EMAIL         refuse the account's logins and tokens (is_active false)
 *   user activate EMAIL
 *
 * Changes apply to the next request: the API guard reads is_admin and is_active from the
 * database on every request.
 */
#include "cli/cli.h"

#include "runtime/alloc.h"
#include "runtime/log.h"
#include "security/email.h"
#include "security/password.h"
#include "storage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define MIN_PASSWORD   8
#define MAX_PASSWORD   100
#define LINE_MAX_BYTES 1024

static void usage(FILE *out)
{
    fprintf(out, "usage: flightshark user create [--admin] EMAIL\n"
                 "       flightshark user promote|demote|activate|deactivate EMAIL\n\n"
                 "create reads the password from the first line of stdin, or prompts for it without\n"
                 "echo when stdin is a terminal (8 to 100 characters). E-mails are trimmed and\n"
                 "lower-cased. Uses DATABASE_URL and the ARGON2_* settings.\n");
}

/* One line of stdin without its line ending; NULL at EOF. Caller wipes and frees. */
static char *read_line(void)
{
    char *buf = fs_malloc(LINE_MAX_BYTES);
    if (!fgets(buf, LINE_MAX_BYTES, stdin)) {
        free(buf);
        return NULL;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static char *prompt_hidden(const char *prompt)
{
    struct termios saved, quiet;
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = read_line();
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fprintf(stderr, "\n");
    }
    return line;
}

/* Code points, as the API's password limits count them. */
static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void wipe(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static char *read_password(void)
{
    if (!isatty(STDIN_FILENO)) {
        char *pw = read_line();
        if (!pw)
            fprintf(stderr, "flightshark user: no password on stdin\n");
        return pw;
    }
    char *pw = prompt_hidden("Password: ");
    char *again = pw ? prompt_hidden("Repeat password: ") : NULL;
    if (!again || strcmp(pw, again) != 0) {
        fprintf(stderr, "flightshark user: the passwords do not match\n");
        wipe(pw);
        pw = NULL;
    }
    wipe(again);
    return pw;
}

static PGconn *connect_or_complain(void)
{
    char *err = NULL;
    PGconn *conn = fs_pg_connect_blocking(fs_cfg->database_url, &err);
    if (!conn) {
        fprintf(stderr, "flightshark user: %s\n", err);
        free(err);
    }
    return conn;
}

/* Runs a statement that returns the affected user's id; prints the id. Returns the exit code:
 * 0, 1 when no row came back (`none_msg` then names the problem), 1 on error. */
static int exec_returning_id(PGconn *conn, const char *sql, int n, const char *const *params,
                             const char *none_msg, const char *done_msg)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    int rc = 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "flightshark user: %s", PQresultErrorMessage(res));
    else if (PQntuples(res) == 0)
        fprintf(stderr, "flightshark user: %s\n", none_msg);
    else {
        printf("%s: %s %s\n", done_msg, PQgetvalue(res, 0, 0), params[0]);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

static int create(const char *email, bool admin)
{
    fs_password_params_t params = fs_password_params_from_config();
    const char *weak = fs_password_params_check(&params);
    if (weak) {
        fprintf(stderr, "flightshark user: invalid configuration: %s\n", weak);
        return 1;
    }
    char *pw = read_password();
    if (!pw)
        return 1;
    size_t len = utf8_len(pw);
    if (len < MIN_PASSWORD || len > MAX_PASSWORD) {
        fprintf(stderr, "flightshark user: the password must have %d to %d characters\n", MIN_PASSWORD,
                MAX_PASSWORD);
        wipe(pw);
        return 1;
    }
    char *hash = fs_password_hash(pw, strlen(pw), &params);
    wipe(pw);
    if (!hash) {
        fprintf(stderr, "flightshark user: password hashing failed\n");
        return 1;
    }
    PGconn *conn = connect_or_complain();
    int rc = 1;
    if (conn) {
        char *none = fs_sprintf("a user with e-mail %s already exists%s", email,
                                admin ? " (use `flightshark user promote` to make it an admin)" : "");
        const char *p[] = {email, hash, admin ? "t" : "f"};
        rc = exec_returning_id(conn,
                               "INSERT INTO users (email, password_hash, is_admin) VALUES ($1, $2, $3) "
                               "ON CONFLICT (email) DO NOTHING RETURNING id",
                               3, p, none, admin ? "created admin" : "created user");
        free(none);
        PQfinish(conn);
    }
    free(hash);
    return rc;
}

static int set_flag(const char *email, const char *column, bool value, const char *done)
{
    PGconn *conn = connect_or_complain();
    if (!conn)
        return 1;
    char *sql =
        fs_sprintf("UPDATE users SET %s = $2, updated_at = now() WHERE email = $1 RETURNING id", column);
    char *none = fs_sprintf("no user with e-mail %s", email);
    const char *p[] = {email, value ? "t" : "f"};
    int rc = exec_returning_id(conn, sql, 2, p, none, done);
    free(sql);
    free(none);
    PQfinish(conn);
    return rc;
}

static int dispatch(const char *action, const char *email, bool admin)
{
    if (strcmp(action, "create") == 0)
        return create(email, admin);
    if (admin) {
        fprintf(stderr, "flightshark user: --admin goes with create only\n");
        return 2;
    }
    if (strcmp(action, "promote") == 0)
        return set_flag(email, "is_admin", true, "promoted");
    if (strcmp(action, "demote") == 0)
        return set_flag(email, "is_admin", false, "demoted");
    if (strcmp(action, "activate") == 0)
        return set_flag(email, "is_active", true, "activated");
    if (strcmp(action, "deactivate") == 0)
        return set_flag(email, "is_active", false, "deactivated");
    fprintf(stderr, "flightshark user: unknown action '%s'\n", action);
    usage(stderr);
    return 2;
}

static int run(int argc, char **argv)
{
    if (fs_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *action = NULL, *raw_email = NULL;
    bool admin = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--admin") == 0)
            admin = true;
        else if (!action)
            action = argv[i];
        else if (!raw_email)
            raw_email = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!action || !raw_email) {
        usage(stderr);
        return 2;
    }
    if (fs_cli_load_config(NULL, 0, false) != 0)
        return 1;
    fs_log_set_role("cli");
    char *email = fs_email_normalize(raw_email);
    const char *why = fs_email_check(email);
    int rc = why ? (fprintf(stderr, "flightshark user: '%s' is not a valid e-mail: %s\n", email, why), 2)
                 : dispatch(action, email, admin);
    free(email);
    return rc;
}

const fs_command_t fs_cmd_user = {"user", "create users, grant or revoke admin rights", run};
