/* The flightshark binary's commands and configuration handling, run as a user would. */
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs `env ENV flightshark ARGS` (stderr merged) and returns its exit code and output. */
static int run(const char *env, const char *args, char *out, size_t size)
{
    char cmd[2048], path[64];
    snprintf(path, sizeof path, "/tmp/fs-cli-test-%d.out", (int)getpid());
    snprintf(cmd, sizeof cmd, "cd /tmp && env %s '%s' %s >%s 2>&1", env, fs_test_env("FS_BINARY"), args, path);
    int rc = system(cmd);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    remove(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char out[65536];

Test(cli, version_names_the_libraries)
{
    cr_assert_eq(run("", "version", out, sizeof out), 0);
    cr_assert(strstr(out, "flightshark 0."), "%s", out);
    cr_assert(strstr(out, "libevhtp 1.2.18"), "%s", out);
}

Test(cli, every_command_has_help)
{
    const char *commands[] = {"serve", "migrate", "version"};
    for (size_t i = 0; i < 3; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        cr_assert_eq(run("", args, out, sizeof out), 0, "%s --help failed: %s", commands[i], out);
        cr_assert(strstr(out, "usage: flightshark"), "%s", out);
    }
}

Test(cli, unknown_command_and_option_are_refused)
{
    cr_assert_eq(run("", "fly-me-to-the-moon", out, sizeof out), 2);
    cr_assert(strstr(out, "unknown command"), "%s", out);
    cr_assert_eq(run("", "serve --bogus", out, sizeof out), 2);
    cr_assert(strstr(out, "unknown option '--bogus'"), "%s", out);
}

Test(cli, invalid_configuration_names_the_variable)
{
    cr_assert_eq(run("PORT=eighty SECRET_KEY=0123456789abcdef0123", "serve", out, sizeof out), 1);
    cr_assert(strstr(out, "PORT: expected an integer from 1 to 65535, got 'eighty'"), "%s", out);

    cr_assert_eq(run("REDIS_URL=http://x SECRET_KEY=0123456789abcdef0123", "serve", out, sizeof out), 1);
    cr_assert(strstr(out, "REDIS_URL"), "%s", out);

    cr_assert_eq(run("DEBUG=maybe", "serve", out, sizeof out), 1);
    cr_assert(strstr(out, "DEBUG: expected true or false, got 'maybe'"), "%s", out);
}

Test(cli, default_secret_is_refused_outside_debug)
{
    cr_assert_eq(run("-u SECRET_KEY DEBUG=false", "serve --print-config", out, sizeof out), 1);
    cr_assert(strstr(out, "SECRET_KEY: still the default"), "%s", out);
}

Test(cli, print_config_masks_secrets_and_passwords)
{
    cr_assert_eq(run("SECRET_KEY=super-secret-value-123456 DATABASE_URL=postgresql://app:hunter2@10.0.0.1/fs",
                     "serve --print-config --port 9123 --workers 3", out, sizeof out),
                 0, "%s", out);
    cr_assert(strstr(out, "SECRET_KEY=****"), "%s", out);
    cr_assert_null(strstr(out, "super-secret-value"));
    cr_assert_null(strstr(out, "hunter2"));
    cr_assert(strstr(out, "DATABASE_URL=postgresql://app:****@10.0.0.1/fs"), "%s", out);
    cr_assert(strstr(out, "PORT=9123"), "%s", out);
    cr_assert(strstr(out, "WORKERS=3"), "%s", out);
}

Test(cli, dotenv_file_is_read_and_environment_wins)
{
    FILE *f = fopen("/tmp/.env", "w");
    cr_assert_not_null(f);
    fprintf(f, "# comment\nexport PORT=7001\nRPC_PORT = \"7002\"\nSECRET_KEY='from-dotenv-0123456789'\nUNRELATED=1\n");
    fclose(f);
    int rc = run("-u SECRET_KEY RPC_PORT=7003", "serve --print-config", out, sizeof out);
    remove("/tmp/.env");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "PORT=7001\n"), "%s", out);
    cr_assert(strstr(out, "RPC_PORT=7003\n"), "%s", out);
}

Test(cli, migrate_is_idempotent)
{
    char env[1024];
    snprintf(env, sizeof env, "DATABASE_URL='%s'", fs_test_env("DATABASE_URL"));
    cr_assert_eq(run(env, "migrate", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "migrations: 0 applied"), "second run applied something: %s", out);
    cr_assert_eq(run(env, "migrate --status", out, sizeof out), 0, "%s", out);
}

Test(cli, migrate_reports_an_unreachable_database)
{
    cr_assert_eq(run("DATABASE_URL=postgresql://nobody@127.0.0.1:1/none", "migrate", out, sizeof out), 1);
    cr_assert(strstr(out, "flightshark migrate:"), "%s", out);
}
