/*
 * spool.c — one file per message that waits for delivery, and per firing alert kept for
 * re-posting. A file is
 *
 *     nops-notify-1 <64 hex: HMAC-SHA256 under subkey "notify" of "<name>\n<data>">\n<data>
 *
 * written to a temporary name, fsync'ed and renamed into place (nops_file_replace), so a file
 * that exists is whole. The MAC binds the file's name too, so a valid file copied under another
 * name (to make a message go out twice) does not verify. What does not verify is never sent:
 * the notifier moves it to rejected/ for a look.
 */
#include "notify/notify_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SPOOL_FILE (8u << 20) /* larger files are not ours */

/* HMAC input "<name>\n<data>" (nops_malloc'd). */
static char *mac_input(const char *name, const char *data, size_t len, size_t *n)
{
    size_t nl = strlen(name);
    char *b = nops_malloc(nl + 1 + len);
    if (!b) return NULL;
    memcpy(b, name, nl);
    b[nl] = '\n';
    memcpy(b + nl + 1, data, len);
    *n = nl + 1 + len;
    return b;
}

int nt_spool_write(const nops_secret *key, const char *dir, const char *name, const char *data,
                   size_t len)
{
    char path[1024], mac[2 * NOPS_MAC_LEN + 1];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t n;
    char *in = mac_input(name, data, len, &n);
    if (!in) {
        errno = ENOMEM;
        return -1;
    }
    nops_secret_mac_hex(key, "notify", in, n, mac);
    nops_free(in);
    const size_t hl = sizeof NT_SPOOL_MAGIC - 1 + 1 + 2 * NOPS_MAC_LEN + 1;
    char *file = nops_malloc(hl + len);
    if (!file) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(file, hl + 1, "%s %s\n", NT_SPOOL_MAGIC, mac);
    memcpy(file + hl, data, len);
    int rc = nops_file_replace(path, file, hl + len);
    nops_free(file);
    return rc;
}

char *nt_spool_read(const nops_secret *key, const char *dir, const char *name, size_t *len,
                    bool *tampered, char *why, size_t why_size)
{
    char path[1024];
    *tampered = false;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *tampered = fd < 0 && errno == ELOOP; /* a symbolic link is not ours */
        nops_errf(why, why_size, "cannot open it: %s", strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_SPOOL_FILE) {
        close(fd);
        *tampered = true;
        nops_errf(why, why_size, "not a regular file of at most %u bytes", MAX_SPOOL_FILE);
        return NULL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *b = nops_malloc(size + 1);
    while (b && got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!b || got != size) {
        nops_free(b);
        nops_errf(why, why_size, b ? "short read" : "out of memory");
        return NULL;
    }
    b[size] = '\0';
    const size_t hl = sizeof NT_SPOOL_MAGIC - 1 + 1 + 2 * NOPS_MAC_LEN + 1;
    char mac[2 * NOPS_MAC_LEN + 1];
    if (size < hl || memcmp(b, NT_SPOOL_MAGIC " ", sizeof NT_SPOOL_MAGIC) != 0 ||
        b[hl - 1] != '\n') {
        nops_free(b);
        *tampered = true;
        nops_errf(why, why_size, "not a NeuralOps notification spool file");
        return NULL;
    }
    memcpy(mac, b + sizeof NT_SPOOL_MAGIC, 2 * NOPS_MAC_LEN);
    mac[2 * NOPS_MAC_LEN] = '\0';
    size_t n;
    char *in = mac_input(name, b + hl, size - hl, &n);
    bool ok = in && nops_secret_verify_hex(key, "notify", in, n, mac);
    nops_free(in);
    if (!ok) {
        nops_free(b);
        *tampered = in != NULL;
        nops_errf(why, why_size,
                  in ? "its MAC does not verify under the engine key (edited, "
                       "renamed, or written with another key)"
                     : "out of memory");
        return NULL;
    }
    memmove(b, b + hl, size - hl + 1);
    *len = size - hl;
    return b;
}

void nt_spool_reject(const char *dir, const char *name)
{
    char from[1024], to[1100], rej[1040];
    snprintf(rej, sizeof rej, "%s/rejected", dir);
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", rej, name);
    if (nops_dir_make(rej) != 0 || rename(from, to) != 0)
        unlink(from); /* never left where it would be read again */
}
