#include "runtime/shared.h"

#include <stdlib.h>
#include <sys/mman.h>

fs_shared_t *fs_shared;

fs_shared_t *fs_shared_create(void)
{
    void *p = mmap(NULL, sizeof(fs_shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        abort();
    fs_shared = p;
    return fs_shared;
}
