/* The mount table parser: the device number and the mount point of each
 * line of /proc/self/mountinfo, the kernel's octal escapes undone, lines
 * that do not parse skipped; and the real table of this process holds
 * the filesystem its working directory is on. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "check.h"
#include "mounts.h"

/* mount_table_parse() of text; -EIO where fmemopen fails. */
static int parse(const char *text, struct mount_table *ret) {
        FILE *f = fmemopen((void *) text, strlen(text), "r");
        if (!f)
                return -EIO;
        int r = mount_table_parse(f, ret);
        fclose(f);
        return r;
}

static void test_fields_are_read(void) {
        struct mount_table t;
        REQUIRE(parse("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                      "36 22 0:45 /notes /home/me/notes rw shared:9 - tmpfs tmpfs rw\n",
                      &t) == 0);
        REQUIRE(t.n == 2);
        CHECK_STR_EQ(t.v[0].point, "/");
        CHECK(t.v[0].dev == makedev(8, 1));
        CHECK_STR_EQ(t.v[1].point, "/home/me/notes");
        CHECK(t.v[1].dev == makedev(0, 45));
        CHECK(mount_table_has_dev(&t, makedev(0, 45)));
        CHECK(!mount_table_has_dev(&t, makedev(0, 46)));
        CHECK(mount_table_has_point(&t, "/home/me/notes"));
        CHECK(!mount_table_has_point(&t, "/home/me"));
        mount_table_done(&t);
        CHECK(t.n == 0 && t.v == NULL);
}

static void test_escapes_are_undone(void) {
        struct mount_table t;
        /* A space, a tab, a newline and a backslash in a mount point; the
         * root field has an escaped space of its own. */
        REQUIRE(parse("40 22 0:50 /a\\040b /mnt/My\\040Drive\\011x\\012y\\134z rw - tmpfs t rw\n", &t) == 0);
        REQUIRE(t.n == 1);
        CHECK_STR_EQ(t.v[0].point, "/mnt/My Drive\tx\ny\\z");
        mount_table_done(&t);
        /* A backslash not followed by three octal digits is kept as is. */
        REQUIRE(parse("41 22 0:51 / /mnt/a\\b\\1x2\\04 rw - tmpfs t rw\n", &t) == 0);
        REQUIRE(t.n == 1);
        CHECK_STR_EQ(t.v[0].point, "/mnt/a\\b\\1x2\\04");
        mount_table_done(&t);
}

static void test_lines_that_do_not_parse_are_skipped(void) {
        struct mount_table t;
        REQUIRE(parse("garbage\n"
                      "42 22 x:y / /bad rw - tmpfs t rw\n"
                      "43 22 0:52 /\n"
                      "44 22 0:53 / /good rw - tmpfs t rw\n",
                      &t) == 0);
        REQUIRE(t.n == 1);
        CHECK_STR_EQ(t.v[0].point, "/good");
        mount_table_done(&t);
        REQUIRE(parse("", &t) == 0);
        CHECK(t.n == 0);
        mount_table_done(&t);
}

static void test_the_real_table_holds_the_working_directory(void) {
        struct mount_table t;
        struct stat st;
        int r = mount_table_read(&t);
        if (r == -ENOENT) {
                printf("SKIP: no %s here\n", MOUNT_TABLE_PATH);
                return;
        }
        REQUIRE(r == 0);
        REQUIRE(stat(".", &st) == 0);
        CHECK(mount_table_has_point(&t, "/"));
        CHECK(mount_table_has_dev(&t, st.st_dev));
        mount_table_done(&t);
}

int main(void) {
        RUN(test_fields_are_read);
        RUN(test_escapes_are_undone);
        RUN(test_lines_that_do_not_parse_are_skipped);
        RUN(test_the_real_table_holds_the_working_directory);
        return check_summary();
}
