/* shared_contracts/ace_summary.c - the one summary of ringless threads (ace_summary.h).
 * Zero-initialised: every slot FREE, every counter 0. Written by Box 2's threads, read by the
 * ACE learner; the protocol is in the header. */
#include "ace_summary.h"

hak_ace_summary_t hak_ace_summary;
