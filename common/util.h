/* Tiny shared helpers: contract timestamps, random ids, JSON strings,
 * monotonic time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

/* 'YYYY-MM-DDTHH:MM:SS.sssZ' in UTC plus NUL, as the storage contract wants. */
#define UTC_TIMESTAMP_LEN 25
void utc_timestamp_now(char out[UTC_TIMESTAMP_LEN]);
/* Now by the clock the kernel stamps inode times with (CLOCK_REALTIME_COARSE,
 * up to a tick behind the precise clock): a file changed after this call
 * gets a ctime at or after the timestamp, which the precise clock, read up
 * to a tick ahead of the inode clock, does not promise. For a files row's
 * indexed_at, which later stats are compared with. */
void utc_timestamp_now_coarse(char out[UTC_TIMESTAMP_LEN]);
/* The same for a CLOCK_REALTIME time in µs. */
void utc_timestamp_at(uint64_t realtime_usec, char out[UTC_TIMESTAMP_LEN]);
/* The time such a timestamp names, in ns since the epoch; -EINVAL if s is
 * not one (another writer's garbage). */
int utc_timestamp_parse(const char *s, int64_t *ret_ns);
/* sec seconds and nsec nanoseconds as nanoseconds since the epoch, held at
 * the ends of int64_t past them (before 1678, after 2261: times `touch -d`
 * can set), where the product would overflow. */
int64_t timestamp_ns(int64_t sec, int64_t nsec);

/* Whether lstat()'s answer (its result, errno, and *st when it is 0)
 * says no note is at the path: nothing there (ENOENT; ENOTDIR, a folder on
 * the way is a file now; ELOOP, a symlink loop on the way, `rm -r d;
 * ln -s d d`), or something that is not a regular file. Another error
 * (EACCES, EIO) says nothing either way: false. */
bool lstat_says_gone(int lstat_result, int lstat_errno, const struct stat *st);

/* The number in a /proc/sys file (a kernel limit), or -1 when it cannot
 * be read. */
long read_proc_long(const char *path);

/* Whether process pid, whose name (comm) is name, is stopped: it runs no
 * code until continued. NOT_STOPPED also where /proc cannot say, and when
 * the process of that pid here has another name. */
enum process_stop {
        PROCESS_NOT_STOPPED,
        PROCESS_STOPPED, /* SIGSTOP, SIGTSTP (Ctrl-Z): kill -CONT continues it */
        PROCESS_TRACED,  /* held by a debugger or tracer */
        PROCESS_FROZEN,  /* its cgroup is frozen (systemctl freeze, docker pause) */
};
enum process_stop process_stop_of(long pid, const char *name);

/* Make room for need elements of elem_size bytes in the array *arrayp
 * points to, whose capacity is *cap elements: the capacity doubles from
 * min_cap (or from what it was), so n appends cost O(n) copying. Returns
 * 0, or -ENOMEM with the array and *cap as they were. */
int greedy_realloc(void *arrayp, size_t *cap, size_t need, size_t elem_size, size_t min_cap);
#define GREEDY_REALLOC(array, cap, need, min_cap) \
        greedy_realloc(&(array), &(cap), (need), sizeof *(array), (min_cap))

/* Arrays of owned strings (n of them in v). strv_push() appends s, which
 * it takes over (freed on failure too; NULL is -ENOMEM, so strdup() can
 * be passed straight in). */
void strv_free(char **v, size_t n);
int strv_push(char ***v, size_t *n, char *s);
bool strv_contains(char *const *v, size_t n, const char *s);

/* FNV-1a, 64 bits: for hash tables and names keyed by short strings that
 * nobody picks to collide (paths under the user's own control). */
uint64_t fnv1a64(const void *data, size_t n);

/* 128 random bits as 32 lowercase hex digits plus NUL. */
#define RANDOM_ID_LEN 33
int random_id(char out[RANDOM_ID_LEN]);

uint64_t now_monotonic_usec(void);
uint64_t now_realtime_usec(void);

/* Length of the valid UTF-8 sequence starting with lead byte p[0] >= 0x80
 * (n bytes available), or, when it is ill-formed, the negated length of its
 * maximal subpart (at least 1): the longest prefix that could still begin a
 * well-formed sequence per The Unicode Standard, Table 3-7. The storage
 * contract replaces that prefix by one U+FFFD, which is what Python's
 * decode('utf-8', 'replace') does. */
int utf8_sequence_length(const unsigned char *p, size_t n);

/* Whether text must be quoted to stay one field of one line: control
 * characters, '"' and '\' (which the quoting itself uses), invalid UTF-8. */
bool text_needs_quoting(const char *text);
/* text as one field: as it is, or (see text_needs_quoting) in double
 * quotes with \" \\ \t \n \r and \ooo for other control bytes and for the
 * bytes of invalid UTF-8, which is how git quotes paths (core.quotePath
 * off: valid non-ASCII stays readable). */
void fputs_field(const char *text, FILE *f);

/* Whether s[0..n) is well-formed UTF-8. */
bool utf8_is_valid(const char *s, size_t n);

/* Write s with control characters as C escapes (\n, \t, \r, \xHH) and
 * bytes that are not UTF-8 as \xHH: a file name may hold both, and a line
 * that names it must stay one line a terminal shows as it is. */
void write_escaped(FILE *f, const char *s);

/* Write s as a JSON string literal (quotes included). JSON text must be
 * UTF-8, and s may not be (a file name is any bytes): each ill-formed
 * subsequence is written as one U+FFFD, as the contract's text rule does. */
void json_write_string(FILE *f, const char *s);
/* Append s as a JSON string literal to a growing buffer, with the same
 * U+FFFD rule; returns 0 or -ENOMEM. */
int json_append_string(char **buf, size_t *len, size_t *cap, const char *s, size_t n);

/* $HOME when it is absolute, else the password database's (a service may
 * run without HOME), newly allocated in *ret: never the working directory.
 * Returns 0, -ENOENT when there is no home, -ENOMEM. */
int home_dir(char **ret);

/* Length of the parent of path's first path_len bytes ("/a/b" -> 2, "/a"
 * -> 1 for "/"); 0 when there is none. */
size_t path_parent_len(const char *path, size_t path_len);

/* dir + "/" + name (name not NUL-terminated necessarily: name_len bytes); NULL on ENOMEM. */
char *path_join(const char *dir, size_t dir_len, const char *name, size_t name_len);

/* 1 if the directory dir has no entries but "." and "..", 0 if it has
 * one, or -errno. */
int dir_is_empty(const char *dir);
