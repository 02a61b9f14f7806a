// tests/misuse/prog_cxx_sized_delete.cc - delete through a base class without a virtual
// destructor: the compiler passes sizeof(Base) to sized delete for a block allocated for
// sizeof(Derived). Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT
// after a line "hakmem: operator delete(...)" naming the pointer printed below.
#include <cstdio>
#include <cstring>

#include "misuse_prog.h"

struct Base {
    int x;
};
struct Derived : Base {
    char pad[100];
};

int main()
{
    Derived *d = new Derived;
    memset(d->pad, 1, sizeof d->pad);
    Base *b = (Base *)hide(static_cast<Base *>(d));
    say("ptr", b);
    delete b; // operator delete(b, 4) for a 112-byte block
    say("survived", launder);
    return 0;
}
