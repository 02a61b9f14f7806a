// tests/misuse/prog_cxx_sized_delete_large.cc - sized delete of a large block with a size
// above the one it was allocated for. Must die by SIGABRT after a line
// "hakmem: operator delete(...)" naming the pointer printed below.
#include <cstdio>
#include <new>

#include "misuse_prog.h"

int main()
{
    void *p = hide(::operator new(100000));
    say("ptr", p);
    ::operator delete(p, (size_t)1 << 24);
    say("survived", launder);
    return 0;
}
