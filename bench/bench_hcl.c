// deps: client/hcl/ client/util.c
/* HCL parse throughput: parses each file given on the command line
 * repeatedly for about a second and prints MB/s and files/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/hcl/hcl.h"
#include "client/util.h"

int main(int argc, char **argv)
{
    size_t total_bytes = 0;
    struct {
        char *name, *data;
        size_t len;
    } files[64];
    int n = 0;
    for (int i = 1; i < argc && n < 64; i++) {
        size_t len;
        char *d = nc_read_file(argv[i], &len, 0);
        if (!d) {
            perror(argv[i]);
            return 1;
        }
        files[n].name = argv[i];
        files[n].data = d;
        files[n].len = len;
        total_bytes += len;
        n++;
    }
    if (!n) {
        fprintf(stderr, "usage: bench_hcl FILE...\n");
        return 1;
    }
    uint64_t start = nc_now_mono_ns(), elapsed;
    size_t rounds = 0;
    do {
        for (int i = 0; i < n; i++) {
            struct hcl_file *f = NULL;
            struct nc_error err = {0};
            if (hcl_parse(files[i].name, files[i].data, files[i].len, &f, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            hcl_file_free(f);
        }
        rounds++;
        elapsed = nc_now_mono_ns() - start;
    } while (elapsed < 1000000000ull);
    double secs = (double)elapsed / 1e9;
    printf("hcl parse: %d seed files (%zu bytes) x %zu rounds: %.1f MB/s, "
           "%.0f files/s, %.1f us per file\n",
           n, total_bytes, rounds, (double)(total_bytes * rounds) / secs / 1e6,
           (double)(rounds * (size_t)n) / secs,
           secs * 1e6 / (double)(rounds * (size_t)n));
    for (int i = 0; i < n; i++)
        free(files[i].data);
    return 0;
}
