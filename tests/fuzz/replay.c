/* Runs a fuzz target over files without libFuzzer: every ctest run (normal and ASan builds)
 * replays the checked-in corpus, so any finding once added there stays a regression test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
        unsigned n = 0;
        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                if (!d) {
                        perror(argv[i]);
                        return 1;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        FILE *f = fopen(path, "rb");
                        if (!f)
                                continue;
                        uint8_t *buf = malloc(1 << 22);
                        size_t len = fread(buf, 1, 1 << 22, f);
                        fclose(f);
                        /* an exact-size copy so ASan sees reads past the end */
                        uint8_t *exact = malloc(len ? len : 1);
                        memcpy(exact, buf, len);
                        free(buf);
                        LLVMFuzzerTestOneInput(exact, len);
                        free(exact);
                        n++;
                }
                closedir(d);
        }
        printf("replayed %u inputs\n", n);
        return n ? 0 : 1;
}
