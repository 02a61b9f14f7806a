/* bench/tiny.c - the `mid` shape with small blocks: T threads, random malloc/free of
 * 16..1024 B over a window of 256 live slots. ops/s. */
#include "window.h"

int main(int argc, char **argv) { return window_main(argc, argv, "tiny", 16, 1024); }
