/* shared_contracts/ace_hooks.c - the no-op hook table (ace_hooks.h). */
#include "ace_hooks.h"

static void hook_nothing(void) {}

hak_ace_hooks_t hak_ace_hooks = {hook_nothing, hook_nothing, hook_nothing, hook_nothing,
                                 hook_nothing};

int hak_library_ready;

void hak_ace_hooks_install(const hak_ace_hooks_t *hooks) { hak_ace_hooks = *hooks; }
