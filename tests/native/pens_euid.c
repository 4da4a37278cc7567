/* Stand-in for any setuid-root program on the host (su, passwd, mount):
 * installed setuid root by the test, run by the attacker. It only prints
 * its real and effective uid and takes no input. With no_new_privs the
 * kernel ignores the setuid bit, so euid stays the tenant's. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("setuid_uid=%d\nsetuid_euid=%d\n", (int)getuid(), (int)geteuid());
    return 0;
}
