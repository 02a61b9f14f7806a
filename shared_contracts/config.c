/* shared_contracts/config.c - parses the options table of config.h from the environment. */
#include "config.h"

#include <sched.h>

#include <stdlib.h>
#include <string.h>

#include "diag.h"

hak_config_t hak_config = {
#define HAK_CFG_DEFAULT(field, name, def, lo, hi, flags, meaning) .field = (def),
    HAK_OPTIONS(HAK_CFG_DEFAULT)
#undef HAK_CFG_DEFAULT
};

static int config_loaded; /* 0 never, 1 loading or loaded; set by the first caller (CAS) */

/* Strict decimal parse: optional spaces, digits only. */
static int parse_int(const char *s, int64_t *out)
{
    int64_t v = 0;
    int digits = 0;
    while (*s == ' ')
        s++;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*s - '0');
        digits++;
    }
    while (*s == ' ')
        s++;
    if (!digits || *s)
        return 0;
    *out = v;
    return 1;
}

/* The words of HAK_OPTION_WORDS, one row per word. */
static const struct {
    const char *name, *word;
    int64_t value;
} option_words[] = {
#define HAK_CFG_WORD(name, word, value) {name, word, value},
    HAK_OPTION_WORDS(HAK_CFG_WORD)
#undef HAK_CFG_WORD
};

/* A word of option `name` (spaces around it allowed), or 0. */
static int parse_word(const char *name, const char *s, int64_t *out)
{
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < sizeof option_words / sizeof option_words[0]; i++) {
        size_t len = strlen(option_words[i].word);
        if (strcmp(option_words[i].name, name) != 0 ||
            strncmp(s, option_words[i].word, len) != 0)
            continue;
        const char *rest = s + len;
        while (*rest == ' ')
            rest++;
        if (!*rest) {
            *out = option_words[i].value;
            return 1;
        }
    }
    return 0;
}

/* "a, b or c": the words of option `name`, for the warning. */
static void words_of(const char *name, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof option_words / sizeof option_words[0]; i++) {
        if (strcmp(option_words[i].name, name) != 0)
            continue;
        n += hak_fmt(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, "%s%s",
                     n ? ", " : "", option_words[i].word);
    }
}

static void load_int(const char *name, int64_t *field, int64_t def, int64_t lo, int64_t hi,
                     unsigned flags)
{
    const char *s = getenv(name);
    int64_t v;
    if (!s)
        return;
    if ((flags & HAK_OPT_WORDS) && parse_word(name, s, &v)) {
        *field = v;
        return;
    }
    if (!parse_int(s, &v) || v < lo || v > hi || ((flags & HAK_OPT_POW2) && (v & (v - 1)))) {
        char words[128] = "";
        if (flags & HAK_OPT_WORDS)
            words_of(name, words, sizeof words);
        hak_warn("%s='%s' is not %s in [%ld, %ld]%s%s; using the default %ld", name, s,
                 (flags & HAK_OPT_POW2) ? "a power of two" : "an integer", (long)lo, (long)hi,
                 words[0] ? " or one of: " : "", words, (long)def);
        *field = def;
        return;
    }
    *field = v;
}

/* A path option: copied when it is not empty and fits; otherwise one warning, and off. */
static void load_path(const char *name, char out[HAK_PATH_MAX])
{
    const char *s = getenv(name);
    if (!s)
        return;
    size_t len = strlen(s);
    if (len == 0 || len >= HAK_PATH_MAX) {
        if (len)
            hak_warn("%s is longer than %u bytes; it is off", name, HAK_PATH_MAX - 1u);
        else
            hak_warn("%s is empty (expected a path); it is off", name);
        return;
    }
    memcpy(out, s, len + 1);
}

/* POOL_REFILL_COUNT_<size>=N for a class size in bytes. */
static void load_class_refills(void)
{
    extern char **environ;
    static const char prefix[] = "POOL_REFILL_COUNT_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *rest = *e + sizeof prefix - 1;
        const char *eq = strchr(rest, '=');
        char sizebuf[16];
        int64_t size, count;
        size_t len = eq ? (size_t)(eq - rest) : 0;
        if (!eq || len == 0 || len >= sizeof sizebuf)
            goto bad;
        memcpy(sizebuf, rest, len);
        sizebuf[len] = '\0';
        if (!parse_int(sizebuf, &size) || !parse_int(eq + 1, &count) || count < 1 ||
            count > 1024)
            goto bad;
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            if (hak_class_size(c) == size) {
                hak_config.class_refill[c] = (uint16_t)count;
                goto next;
            }
        }
    bad:
        hak_warn("%s: expected POOL_REFILL_COUNT_<class size in bytes>=<1..1024>, with a size "
                 "from docs/TUNING.md; ignored",
                 *e);
    next:;
    }
}

void hak_config_load(void)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&config_loaded, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE))
        return;
#define HAK_CFG_LOAD(field, name, def, lo, hi, flags, meaning) \
    load_int(name, &hak_config.field, def, lo, hi, flags);
    HAK_OPTIONS(HAK_CFG_LOAD)
#undef HAK_CFG_LOAD
    if (hak_config.ace_min > hak_config.ace_max) {
        hak_warn("POOL_ACE_MIN=%ld is above POOL_ACE_MAX=%ld; using the defaults 4 and 1024",
                 (long)hak_config.ace_min, (long)hak_config.ace_max);
        hak_config.ace_min = 4;
        hak_config.ace_max = 1024;
    }
    load_class_refills();
    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    hak_config.cpus = cpus < 1 ? 1 : cpus;
#define HAK_CFG_LOAD_PATH(field, name, meaning) load_path(name, hak_config.field);
    HAK_PATH_OPTIONS(HAK_CFG_LOAD_PATH)
#undef HAK_CFG_LOAD_PATH
}
