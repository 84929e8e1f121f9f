/* ext2.c: libext2fs's error table and lock (ext2.h). */
#include "ext2.h"

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void register_errors(void) {
        add_error_table(&et_ext2_error_table);
}

void hv_ext2_lock(void) {
        pthread_once(&once, register_errors);
        pthread_mutex_lock(&lock);
}

void hv_ext2_unlock(void) {
        pthread_mutex_unlock(&lock);
}
