/*
 * testutil.h — small helpers shared by the integration tests (header-only, tests only).
 */
#ifndef NOPS_TESTUTIL_H
#define NOPS_TESTUTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file as a NUL-terminated string ("" when it cannot be read); free() it. */
static inline char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t r = n > 0 ? fread(b, 1, (size_t)n, f) : 0;
    b[r] = '\0';
    fclose(f);
    return b;
}

/* rm -rf dir (a test's own temporary directory); 0 on success. */
static inline int tu_remove_tree(const char *dir)
{
    char cmd[1100];
    if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd)
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* Newlines in s. */
static inline int tu_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Whether a thread of this process is named `name` (/proc/self/task/<tid>/comm). */
static inline bool tu_thread_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char path[300], line[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (f && fgets(line, sizeof line, f))
            found = strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == '\n';
        if (f)
            fclose(f);
    }
    closedir(d);
    return found;
}

#endif
