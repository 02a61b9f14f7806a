# tests/lib/circles.awk - find circles in a dependency graph between modules.
#
# Input: one edge a line, "FROM TO WHY" (WHY: one word saying where the edge comes from, such
# as "span.c:debug.h"). Output: one line per circle a depth-first walk finds (at least one in
# every group of modules that depend on each other), "circle: a -> b -> a (why; why)", walking
# the modules in the order they first appear. Exit status 1 if there is a circle, 0 if none.
{
    if ($1 == $2)
        next
    if (!($1 in seen)) { seen[$1] = 1; order[++nnodes] = $1 }
    if (!($2 in seen)) { seen[$2] = 1; order[++nnodes] = $2 }
    key = $1 SUBSEP $2
    if (!(key in why)) {
        why[key] = $3
        adj[$1] = adj[$1] " " $2
    }
}

function walk(u,    list, n, i, v, k, path, whys) {
    color[u] = 1
    stack[++sp] = u
    n = split(adj[u], list, " ")
    for (i = 1; i <= n; i++) {
        v = list[i]
        if (color[v] == 1) {
            for (k = sp; k > 1 && stack[k] != v; k--)
                ;
            path = ""
            whys = ""
            for (; k <= sp; k++) {
                path = path stack[k] " -> "
                whys = whys (k < sp ? why[stack[k] SUBSEP stack[k + 1]] : why[u SUBSEP v]) "; "
            }
            print "circle: " path v " (" substr(whys, 1, length(whys) - 2) ")"
            found = 1
        } else if (color[v] == 0) {
            walk(v)
        }
    }
    color[u] = 2
    sp--
}

END {
    for (i = 1; i <= nnodes; i++)
        if (!color[order[i]])
            walk(order[i])
    exit found ? 1 : 0
}
