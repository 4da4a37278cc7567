/* LD_PRELOAD payload for the hostile-tenant suite: when loaded into any
 * process (e.g. the shell that PHP's mail() starts), it writes its uid
 * into the file named by $PENS_MARK. Built by the test:
 * gcc -shared -fPIC -o pens_preload.so pens_preload.c */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void pens_preload(void) {
    const char *mark = getenv("PENS_MARK");
    if (!mark) return;
    int fd = open(mark, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "preload ran uid=%d pid=%d\n", (int)getuid(), (int)getpid());
    if (write(fd, buf, (size_t)n) < 0) {
    }
    close(fd);
    unsetenv("LD_PRELOAD");
}
