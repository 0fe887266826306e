/*
 * files.c — files and directories the engine creates: private to its user and group
 * (directories 0750, files 0640, whatever the umask), close-on-exec, and made durable when
 * renamed into place (fsync of the file, then of its directory).
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const nops_cfg_entry storage_entries[] = {
    {"data_dir", NOPS_CFG_STRING, offsetof(nops_storage_params, data_dir), 0, 512,
     "./neuralops-data", NULL, "data-dir", 0,
     "Directory of signals.jsonl and incidents.jsonl (created if missing)."},
};
const nops_cfg_section nops_storage_cfg_section = {
    "storage", "Where the embedded default keeps its records.", storage_entries,
    sizeof storage_entries / sizeof storage_entries[0], NULL,
};

int nops_file_open(const char *path, int flags)
{
    if (!(flags & O_CREAT))
        return open(path, flags | O_CLOEXEC);
    /* a file made here gets exactly NOPS_FILE_MODE whatever the umask; an existing file of
     * ours that is wider is narrowed; a narrower one is left as it is */
    int fd = open(path, (flags | O_CLOEXEC | O_EXCL) & ~O_TRUNC, NOPS_FILE_MODE);
    if (fd >= 0) {
        (void)fchmod(fd, NOPS_FILE_MODE);
        return fd;
    }
    if (errno != EEXIST || (flags & O_EXCL))
        return -1;
    fd = open(path, (flags | O_CLOEXEC) & ~O_CREAT);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & 0777 & ~(mode_t)NOPS_FILE_MODE))
        (void)fchmod(fd, st.st_mode & NOPS_FILE_MODE);
    return fd;
}

FILE *nops_file_fopen(const char *path, const char *mode)
{
    int flags;
    if (mode[0] == 'r')
        flags = strchr(mode, '+') ? O_RDWR : O_RDONLY;
    else if (mode[0] == 'w')
        flags = (strchr(mode, '+') ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
    else if (mode[0] == 'a')
        flags = (strchr(mode, '+') ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
    else {
        errno = EINVAL;
        return NULL;
    }
    int fd = nops_file_open(path, flags);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, mode);
    if (!f) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return f;
}

int nops_dir_make(const char *path)
{
    if (mkdir(path, NOPS_DIR_MODE) == 0) {
        (void)chmod(path, NOPS_DIR_MODE); /* the umask may have narrowed or widened it */
        return 0;
    }
    if (errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int nops_fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int nops_file_replace(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* a fresh file, never an existing one: whatever sits at the temp name (a stale temp, or a
     * symbolic link planted there to make us write elsewhere) is removed, and O_EXCL with
     * O_NOFOLLOW refuses anything that appears meanwhile */
    if (unlink(tmp) != 0 && errno != ENOENT)
        return -1;
    int fd = nops_file_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    return nops_fsync_dir_of(path);
fail:;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved ? saved : EIO;
    return -1;
}
