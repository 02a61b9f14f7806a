/* bench/mid.c - the headline workload: T threads (default: one per core), each doing random
 * malloc/free of 8-32 KiB (8192..32768 B) over a window of 256 live slots. ops/s. */
#include "window.h"

int main(int argc, char **argv) { return window_main(argc, argv, "mid", 8192, 32768); }
